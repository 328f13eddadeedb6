//! For the people who decide and the tools around them: `timeline`, the
//! HTML report (rendered in headless Chromium when it is installed; CI
//! installs it and sets S3REWIND_REQUIRE_CHROMIUM=1), `--json`, logs that
//! never show a credential, completions and the man page.

mod common;

use common::*;
use serde_json::Value;

/// A bucket with a month of steady history (s3sim's seed), then a bad job
/// that writes 300 new keys within a second or two; scanned into `w`.
/// Returns the job's first second.
fn incident(w: &Workdir) -> (Server, i64) {
    let server = seeded_server(400, 3, 0.2, 11, &[]);
    let start = unix_now().as_secs();
    wait_for_second_after(start);
    let start = start as i64 + 1;
    let mut b = Bucket::on(&server, "seeded", true);
    for i in 0..300 {
        b.put(&format!("bad/{i:03}"), b"oops");
    }
    s3rewind_ok(
        &w.catalog(),
        &["scan", "s3://seeded", "--endpoint-url", &server.endpoint],
    );
    (server, start)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{text}"))
}

fn keys_of(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn timeline_finds_the_bad_job_and_suggests_the_second_before_it() {
    let w = Workdir::new();
    let (_server, start) = incident(&w);
    let out = s3rewind_ok(&w.catalog(), &["timeline", "--by", "hour"]);
    assert!(out.contains(" BURST"), "{out}");
    let line = format!(
        "s3rewind plan restore --to {}",
        model::time::format_time(start - 1)
    );
    assert!(out.contains(&line), "{out}");
    // Not a terminal: plain text, no escape sequences, no block characters.
    assert!(!out.contains('\x1b') && !out.contains('█'), "{out}");

    let t = json_of(&s3rewind_ok(
        &w.catalog(),
        &["timeline", "--by", "hour", "--json"],
    ));
    assert_eq!(t["slot_seconds"], 3600);
    assert_eq!(
        t["suggested_to"].as_str(),
        Some(model::time::format_time(start - 1).as_str())
    );
    let slots = t["slots"].as_array().unwrap();
    let sum = |field: &str| {
        slots
            .iter()
            .map(|s| s[field].as_u64().unwrap())
            .sum::<u64>()
    };
    let entries: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM entries");
    assert_eq!(
        (sum("writes") + sum("overwrites") + sum("deletes")) as i64,
        entries
    );
    let markers: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM entries WHERE is_marker");
    assert_eq!(sum("deletes") as i64, markers);
    assert_eq!(
        keys_of(&slots[0]),
        ["deletes", "overwrites", "start", "start_unix", "writes"]
    );

    // --where narrows it to the job's keys: all writes, nothing usual.
    let t = json_of(&s3rewind_ok(
        &w.catalog(),
        &["timeline", "--where", "key LIKE 'bad/%'", "--json"],
    ));
    let writes: u64 = t["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["writes"].as_u64().unwrap())
        .sum();
    assert_eq!(writes, 300);

    // The restore it suggests keeps the --where, quoted for the shell:
    // pasted, it rewinds the keys the timeline was drawn for, not all.
    let every_key = "key != 'it''s' AND 1 = 1";
    let text = s3rewind_ok(
        &w.catalog(),
        &["timeline", "--by", "hour", "--where", every_key],
    );
    let suggested = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("s3rewind plan restore --to "))
        .unwrap_or_else(|| panic!("no suggestion: {text}"));
    let t = json_of(&s3rewind_ok(
        &w.catalog(),
        &["timeline", "--by", "hour", "--where", every_key, "--json"],
    ));
    assert_eq!(
        t["suggested_command"].as_str(),
        Some(format!("s3rewind plan restore --to {suggested}").as_str())
    );
    let quoted = suggested
        .split_once(" --where ")
        .unwrap_or_else(|| panic!("no --where in {suggested}"))
        .1;
    let echoed = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s {quoted}")])
        .output()
        .expect("sh");
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), every_key);

    // Bad input: a clear error, non-zero exit, the catalog as it was.
    let before = snapshot(&w.catalog());
    let err = s3rewind_err(
        &w.catalog(),
        &["timeline", "--where", "key = 'a'); DROP TABLE keys; --"],
    );
    assert!(err.contains("--where"), "{err}");
    let err = s3rewind_err(
        &w.catalog(),
        &["timeline", "--since", "2024-05-02", "--until", "2024-05-01"],
    );
    assert!(err.contains("--since"), "{err}");
    assert_eq!(snapshot(&w.catalog()), before);
    let keys: i64 = catalog_scalar(&w.catalog(), "SELECT count(*) FROM keys");
    assert_eq!(keys, 700, "400 seeded keys and the job's 300");
}

#[test]
fn the_report_says_what_the_plan_does_with_the_catalogs_numbers() {
    let w = Workdir::new();
    let (server, start) = incident(&w);
    let to = model::time::format_time(start - 1);
    s3rewind_ok(
        &w.catalog(),
        &["plan", "restore", "--to", &to, "--name", "undo-job"],
    );
    let html_path = w.path("undo-job.html");
    let out = s3rewind_ok(
        &w.catalog(),
        &["report", "undo-job", "--out", html_path.to_str().unwrap()],
    );
    assert!(out.contains("wrote the report"), "{out}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Self-contained: nothing fetched, nothing run.
    for banned in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(banned), "{banned} in the report");
    }
    let figure = |html: &str, name: &str| -> String {
        let at = html
            .find(&format!("data-figure=\"{name}\">"))
            .unwrap_or_else(|| panic!("no figure {name}"));
        let rest = &html[at..];
        let text = &rest[rest.find('>').unwrap() + 1..];
        text[..text.find('<').unwrap()].replace(',', "")
    };
    let actions: i64 = catalog_scalar(
        &w.catalog(),
        "SELECT count(*) FROM plan_review WHERE plan = 'undo-job'",
    );
    assert_eq!(actions, 300);
    assert_eq!(figure(&html, "actions"), actions.to_string());
    assert_eq!(figure(&html, "hide-keys"), "300");
    assert_eq!(figure(&html, "to"), to);
    assert_eq!(figure(&html, "pending"), "300");
    assert_eq!(figure(&html, "suggested"), to);
    // The chart's table has every slot, the quiet ones too.
    let timeline = json_of(&s3rewind_ok(&w.catalog(), &["timeline", "--json"]));
    let slots = timeline["slots"].as_array().unwrap();
    let table = &html[html.find("data-figure=\"timeline-table\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr><td>").count(), slots.len());
    assert!(slots
        .iter()
        .any(|s| s["writes"] == 0 && s["overwrites"] == 0 && s["deletes"] == 0));
    // The SQL beside a figure reproduces it.
    let shown_sql = "SELECT action, count(*) AS actions, count(DISTINCT key) AS keys, coalesce(sum(size), 0) AS bytes FROM plan_review WHERE plan = 'undo-job' GROUP BY action ORDER BY action";
    assert!(
        html.contains(&shown_sql.replace('\'', "&#39;")),
        "the by-action SQL"
    );
    let sql_out = s3rewind_ok(&w.catalog(), &["sql", "--json", shown_sql]);
    assert_eq!(json_of(&sql_out)[0]["actions"], 300);

    // After apply the report shows the progress.
    s3rewind_ok(
        &w.catalog(),
        &[
            "apply",
            "undo-job",
            "--yes",
            "--endpoint-url",
            &server.endpoint,
        ],
    );
    s3rewind_ok(
        &w.catalog(),
        &["report", "undo-job", "--out", html_path.to_str().unwrap()],
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(figure(&html, "done"), "300");
    assert_eq!(figure(&html, "failed"), "0");
    render_in_chromium(
        &html_path,
        &[("actions", "300"), ("done", "300"), ("to", &to)],
    );

    // A plan that does not exist; an --out onto the catalog.
    let err = s3rewind_err(&w.catalog(), &["report", "nope"]);
    assert!(err.contains("no plan named"), "{err}");
    let err = s3rewind_err(
        &w.catalog(),
        &["report", "undo-job", "--out", w.catalog().to_str().unwrap()],
    );
    assert!(err.contains("catalog"), "{err}");
}

/// Renders the page in headless Chromium: a screenshot (kept beside the
/// page) and the DOM as the browser built it, whose figures must read as
/// `expected`.
fn render_in_chromium(page: &std::path::Path, expected: &[(&str, &str)]) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var("S3REWIND_REQUIRE_CHROMIUM").is_err(),
            "S3REWIND_REQUIRE_CHROMIUM is set but no chromium is installed"
        );
        eprintln!("chromium is not installed: the report was checked as text only");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[String]| {
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let shot = page.with_extension("png");
    run(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1000,2200".to_owned(),
    ]);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    let dom = String::from_utf8(run(&["--dump-dom".to_owned()]).stdout).unwrap();
    for (name, value) in expected {
        let at = dom
            .find(&format!("data-figure=\"{name}\">"))
            .unwrap_or_else(|| panic!("{name} not in the DOM"));
        let text = &dom[at..];
        let text = &text[text.find('>').unwrap() + 1..];
        assert_eq!(
            text[..text.find('<').unwrap()].replace(',', ""),
            *value,
            "{name}"
        );
    }
}

#[test]
fn json_everywhere_with_the_documented_fields() {
    let w = Workdir::new();
    let (server, start) = incident(&w);
    let catalog = w.catalog();

    let status = json_of(&s3rewind_ok(&catalog, &["status", "--json"]));
    assert_eq!(keys_of(&status), ["catalog", "plans", "scan"]);
    let scan = &status["scan"];
    assert_eq!(scan["complete"], true);
    assert_eq!(scan["bucket"], "seeded");
    // The location as documented, the endpoint beside it.
    assert_eq!(scan["location"], "s3://seeded/");
    assert_eq!(scan["endpoint"], server.endpoint.as_str());
    let versions: i64 =
        catalog_scalar(&catalog, "SELECT count(*) FROM entries WHERE NOT is_marker");
    assert_eq!(scan["versions"], versions);
    assert_eq!(
        keys_of(scan),
        [
            "base_prefix",
            "bucket",
            "compacted_at",
            "complete",
            "delete_markers",
            "endpoint",
            "finished_at",
            "keys",
            "location",
            "pages",
            "prefixes",
            "ranges",
            "rescanned_at",
            "revision",
            "runs",
            "shard",
            "sources",
            "started_at",
            "versioning",
            "versions"
        ]
    );

    // A rescan that finds the scan complete says so in JSON too.
    let again = json_of(&s3rewind_ok(
        &catalog,
        &[
            "scan",
            "s3://seeded",
            "--endpoint-url",
            &server.endpoint,
            "--json",
        ],
    ));
    assert_eq!(again["already_complete"], true);
    assert_eq!(again["location"], "s3://seeded/");
    assert_eq!(again["endpoint"], server.endpoint.as_str());

    let to = model::time::format_time(start - 1);
    s3rewind_ok(&catalog, &["plan", "restore", "--to", &to, "--name", "r"]);
    let list = json_of(&s3rewind_ok(&catalog, &["plan", "list", "--json"]));
    let plan = &list["plans"][0];
    assert_eq!(
        keys_of(plan),
        [
            "actions",
            "created_at",
            "done",
            "drifted",
            "failed",
            "name",
            "parameters",
            "pending",
            "restoring",
            "rule",
            "skipped",
            "state",
            "uncertain",
            "undone_by"
        ]
    );
    assert_eq!(
        (plan["name"].as_str(), plan["actions"].as_u64()),
        (Some("r"), Some(300))
    );
    assert_eq!(plan["state"], "not applied");

    let show = json_of(&s3rewind_ok(&catalog, &["plan", "show", "r", "--json"]));
    assert_eq!(show["kinds"]["add_delete_marker"]["actions"], 300);
    assert_eq!(show["keys"], 300);
    // Delete markers are DeleteObject requests: free.
    assert_eq!(show["cost"]["delete_requests"], 300);
    assert_eq!(show["cost"]["dollars"].as_f64(), Some(0.0));
    assert!(show["sample"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with("bad/"));
    assert_eq!(show["hazards"], serde_json::json!([]));

    let checked = json_of(&s3rewind_ok(
        &catalog,
        &[
            "check",
            "--plan",
            "r",
            "--json",
            "--endpoint-url",
            &server.endpoint,
        ],
    ));
    assert_eq!(
        keys_of(&checked),
        [
            "blocked",
            "bucket",
            "checks",
            "locked",
            "not_checked",
            "plan",
            "requests",
            "stale"
        ]
    );
    assert!(checked["stale"].is_null());
    assert_eq!(
        keys_of(&checked["checks"][0]),
        [
            "check",
            "count",
            "details",
            "fix",
            "level",
            "not_checked",
            "summary"
        ]
    );
    let names: Vec<&str> = checked["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "versioning",
            "mfa-delete",
            "lifecycle",
            "object-lock",
            "archived",
            "kms",
            "sse-c",
            "replication",
            "encryption",
            "requester-pays",
            "ownership",
            "policy"
        ]
    );

    // apply --json: stdout is one object; the question is answered by --yes.
    let apply = [
        "apply",
        "r",
        "--yes",
        "--json",
        "--endpoint-url",
        &server.endpoint,
    ];
    let applied = json_of(&s3rewind_ok(&catalog, &apply));
    assert_eq!(
        keys_of(&applied),
        ["failures_by_code", "notes", "plan", "run"]
    );
    assert_eq!(
        keys_of(&applied["run"]),
        [
            "concurrency",
            "done",
            "drifted",
            "failed",
            "guard",
            "guards",
            "requests",
            "restoring",
            "retries",
            "seconds",
            "skipped",
            "throttled",
            "uncertain"
        ]
    );
    assert!(applied["run"]["guards"]["markers"]["guard"].is_string());
    assert_eq!(applied["run"]["done"], 300);
    assert_eq!(applied["plan"]["state"], "applied");
    let again = json_of(&s3rewind_ok(&catalog, &apply));
    assert_eq!(again["run"], Value::Null);

    // Keys keep their exact bytes in JSON.
    let mut b = Bucket::on(&server, "seeded", true);
    b.put("odd/\u{1b}[31mred\nline", b"x");
    s3rewind_ok(
        &catalog,
        &[
            "scan",
            "s3://seeded",
            "--fresh",
            "--yes",
            "--endpoint-url",
            &server.endpoint,
        ],
    );
    s3rewind_ok(
        &catalog,
        &[
            "plan",
            "sql",
            "--name",
            "odd",
            "--query",
            "SELECT 'add_delete_marker', key, NULL FROM objects WHERE key LIKE 'odd/%'",
        ],
    );
    let show = json_of(&s3rewind_ok(&catalog, &["plan", "show", "odd", "--json"]));
    assert_eq!(show["sample"][0]["key"], "odd/\u{1b}[31mred\nline");
}

#[test]
fn logs_show_the_sdk_at_work_and_never_a_credential() {
    let server = seeded_server(50, 2, 0.0, 3, &["--fault-slowdown", "0.2"]);
    for (flags, env) in [(&["-vv"][..], None), (&[][..], Some("trace"))] {
        let w = Workdir::new();
        let mut cmd = s3rewind_command(&w.catalog());
        cmd.args([
            "scan",
            "s3://seeded",
            "--page-size",
            "7",
            "--endpoint-url",
            &server.endpoint,
        ])
        .args(flags)
        .env("AWS_SESSION_TOKEN", "s3rewind-test-session-token");
        if let Some(filter) = env {
            cmd.env("S3REWIND_LOG", filter);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("aws_smithy_runtime"),
            "the SDK's events: {log:.2000}"
        );
        assert!(log.contains("retrying"), "our retries: {log:.2000}");
        // The SDK names the Authorization and token headers at trace
        // level, their values redacted; the signing crate, which logs the
        // canonical request with the token in it, is never heard.
        for secret in [
            SECRET_KEY,
            "s3rewind-test-session-token",
            "Signature=",
            "Credential=",
            "canonical_request",
        ] {
            assert!(
                !log.to_ascii_lowercase()
                    .contains(&secret.to_ascii_lowercase()),
                "{secret} in the log ({:?}, {env:?})",
                flags
            );
        }
    }
    // Quiet by default; a bad filter is an error that says what to write.
    let w = Workdir::new();
    let out = s3rewind(&w.catalog(), &["status"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("INFO"));
    let out = s3rewind_command(&w.catalog())
        .arg("status")
        .env("S3REWIND_LOG", "s3io=loud")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("S3REWIND_LOG"));
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    let w = Workdir::new();
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef s3rewind"),
        ("fish", "complete -c s3rewind"),
    ] {
        let script = s3rewind_ok(&w.catalog(), &["completions", shell]);
        assert!(script.contains(mark), "{shell}");
        for word in ["timeline", "report", "shard", "json"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let man = s3rewind_ok(&w.catalog(), &["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH s3rewind"),
        "{man:.300}"
    );
    assert!(man.contains("timeline"));
    let err = s3rewind_err(&w.catalog(), &["completions", "tcsh"]);
    assert!(err.contains("bash"), "{err}");
}
