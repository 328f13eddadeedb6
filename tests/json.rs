//! docs/json.md, read back from real runs: every field it documents for a
//! command's `--json` is in that command's output, with the documented
//! type. One tiny incident on s3sim goes through scan, plan, check, apply,
//! verify and the re-listings; a report s3sim writes feeds `--inventory`.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// What a documented field holds. `Or(a, b)`: either.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Int,
    Num,
    Bool,
    Arr,
    Obj,
    Null,
    Or(&'static Ty, &'static Ty),
}

use Ty::*;

const STR_OR_NULL: Ty = Or(&Str, &Null);
const INT_OR_NULL: Ty = Or(&Int, &Null);
const NUM_OR_NULL: Ty = Or(&Num, &Null);
const OBJ_OR_NULL: Ty = Or(&Obj, &Null);

fn is(v: &Value, ty: Ty) -> bool {
    match ty {
        Str => v.is_string(),
        Int => v.is_u64() || v.is_i64(),
        Num => v.is_number(),
        Bool => v.is_boolean(),
        Arr => v.is_array(),
        Obj => v.is_object(),
        Null => v.is_null(),
        Or(a, b) => is(v, *a) || is(v, *b),
    }
}

/// Every field of `spec` is in `v` with its type.
#[track_caller]
fn fields(what: &str, v: &Value, spec: &[(&str, Ty)]) {
    assert!(v.is_object(), "{what}: not an object: {v:#}");
    for (name, ty) in spec {
        let field = v
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no field {name:?} in {v:#}"));
        assert!(
            is(field, *ty),
            "{what}.{name}: expected {ty:?}, found {field}"
        );
    }
}

/// Every element of the array `v` has `spec`'s fields; returns how many.
#[track_caller]
fn each(what: &str, v: &Value, spec: &[(&str, Ty)]) -> usize {
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {v}"));
    for (i, item) in items.iter().enumerate() {
        fields(&format!("{what}[{i}]"), item, spec);
    }
    items.len()
}

/// Runs `args` with `--json` on the catalog, expecting exit code `code`;
/// standard output must be exactly one JSON object.
#[track_caller]
fn json_run(catalog: &Path, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = s3rewind(catalog, &all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "s3rewind {all:?}:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "s3rewind {all:?}: not one JSON object ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const PLAN: &[(&str, Ty)] = &[
    ("name", Str),
    ("rule", Str),
    ("parameters", Str),
    ("created_at", Str),
    ("actions", Int),
    ("done", Int),
    ("failed", Int),
    ("skipped", Int),
    ("drifted", Int),
    ("restoring", Int),
    ("uncertain", Int),
    ("pending", Int),
    ("undone_by", STR_OR_NULL),
    ("state", Str),
];

const PLAN_SHOW: &[(&str, Ty)] = &[
    ("keys", Int),
    ("kinds", Obj),
    ("cost", Obj),
    ("sample", Arr),
    ("hazards", Arr),
    ("into", STR_OR_NULL),
    ("already", Obj),
    ("stale", OBJ_OR_NULL),
];

const CHECK: &[(&str, Ty)] = &[
    ("check", Str),
    ("level", Str),
    ("count", Int),
    ("summary", Str),
    ("fix", STR_OR_NULL),
    ("details", Arr),
    ("not_checked", Bool),
];

/// `plan show NAME --json`, with every documented field and sub-field.
#[track_caller]
fn plan_show(catalog: &Path, name: &str) -> Value {
    let shown = json_run(catalog, &["plan", "show", name], 0);
    fields("plan show", &shown, PLAN);
    fields("plan show", &shown, PLAN_SHOW);
    for (kind, counts) in shown["kinds"].as_object().expect("kinds") {
        fields(
            &format!("kinds.{kind}"),
            counts,
            &[("actions", Int), ("bytes", Int)],
        );
    }
    fields(
        "cost",
        &shown["cost"],
        &[
            ("write_requests", Int),
            ("delete_requests", Int),
            ("dollars", Num),
        ],
    );
    each("hazards", &shown["hazards"], CHECK);
    for row in shown["sample"].as_array().expect("sample") {
        let row = row.as_object().expect("a sample row is an object");
        assert!(row.values().all(Value::is_string), "{row:?}");
    }
    shown
}

fn state_at_t(b: &mut Bucket) -> String {
    for i in 0..4 {
        let key = format!("img/{i:03}");
        b.put(&key, format!("{i} v1").as_bytes());
    }
    let t = mark_t();
    for i in 0..4 {
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
fn every_documented_field_is_in_every_commands_json() {
    let server = start_server(ServerKind::S3sim, &[]);
    let mut b = Bucket::on(&server, &unique_bucket("json"), true);
    let dst = Bucket::on(&server, &unique_bucket("json-dst"), true);
    let t = state_at_t(&mut b);
    let w = Workdir::new();
    let c = w.catalog();
    let endpoint = server.endpoint.as_str();
    let url = b.url();
    let at = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--endpoint-url".to_owned(), endpoint.to_owned()]);
        all
    };

    // scan, and scan of a finished catalog.
    let scanned = json_run(&c, &strs(&at(&["scan", &url])), 0);
    fields(
        "scan",
        &scanned,
        &[
            ("location", Str),
            ("endpoint", STR_OR_NULL),
            ("finished", Bool),
            ("already_complete", Bool),
            ("versions", Int),
            ("delete_markers", Int),
            ("seconds", Num),
            ("pages", Int),
            ("requests", Int),
            ("retries", Int),
            ("ranges", Int),
            ("cut_requests", Int),
            ("compaction_seconds", NUM_OR_NULL),
        ],
    );
    assert_eq!(scanned["location"], format!("s3://{}/", b.name));
    assert_eq!(scanned["endpoint"], endpoint);
    assert_eq!(scanned["already_complete"], false);
    let again = json_run(&c, &strs(&at(&["scan", &url])), 0);
    fields(
        "scan (complete)",
        &again,
        &[
            ("location", Str),
            ("endpoint", STR_OR_NULL),
            ("finished", Bool),
            ("already_complete", Bool),
            ("versions", Int),
            ("delete_markers", Int),
        ],
    );
    assert_eq!(again["already_complete"], true);

    // split (reads the bucket, not the catalog).
    let split = json_run(&c, &strs(&at(&["split", &url, "--parts", "2"])), 0);
    fields(
        "split",
        &split,
        &[
            ("location", Str),
            ("bounds", Arr),
            ("parts", Arr),
            ("keys", Int),
            ("requests", Int),
        ],
    );
    let parts = each(
        "split.parts",
        &split["parts"],
        &[
            ("part", Int),
            ("after", STR_OR_NULL),
            ("upto", STR_OR_NULL),
            ("share", Num),
            ("keys", Int),
        ],
    );
    assert_eq!(parts, 2);

    // timeline: with entries, and with none.
    let timeline = json_run(&c, &["timeline"], 0);
    let timeline_fields: &[(&str, Ty)] = &[
        ("slot_seconds", INT_OR_NULL),
        ("slots", Arr),
        ("usual", INT_OR_NULL),
        ("burst_threshold", INT_OR_NULL),
        ("bursts", Arr),
        ("suggested_to", STR_OR_NULL),
        ("suggested_command", STR_OR_NULL),
    ];
    fields("timeline", &timeline, timeline_fields);
    assert!(timeline["slot_seconds"].is_u64(), "{timeline:#}");
    assert!(timeline["usual"].is_u64(), "{timeline:#}");
    let slots = each(
        "timeline.slots",
        &timeline["slots"],
        &[
            ("start", Str),
            ("start_unix", Int),
            ("writes", Int),
            ("overwrites", Int),
            ("deletes", Int),
        ],
    );
    assert!(slots > 0);
    let none = json_run(&c, &["timeline", "--where", "key = 'no such key'"], 0);
    fields("timeline (no entry)", &none, timeline_fields);
    for field in [
        "slot_seconds",
        "usual",
        "burst_threshold",
        "suggested_to",
        "suggested_command",
    ] {
        assert!(none[field].is_null(), "{field}: {none:#}");
    }

    // Plans: a restore, and a cleanup made before it is applied.
    s3rewind_ok(&c, &["plan", "restore", "--to", &t, "--name", "r"]);
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
    let listed = json_run(&c, &["plan", "list"], 0);
    assert_eq!(each("plan list.plans", &listed["plans"], PLAN), 2);
    let shown = plan_show(&c, "r");
    assert!(
        shown["into"].is_null() && shown["stale"].is_null(),
        "{shown:#}"
    );
    assert!(!shown["sample"].as_array().expect("sample").is_empty());
    fields(
        "plan show.already",
        &shown["already"],
        &[("keys", Int), ("by", Obj)],
    );

    // check, with and without a plan.
    let check_fields: &[(&str, Ty)] = &[
        ("bucket", Str),
        ("plan", STR_OR_NULL),
        ("blocked", Bool),
        ("checks", Arr),
        ("locked", Arr),
        ("not_checked", Arr),
        ("requests", Int),
        ("stale", OBJ_OR_NULL),
    ];
    let checked = json_run(&c, &strs(&at(&["check", "--plan", "r"])), 0);
    fields("check --plan", &checked, check_fields);
    assert_eq!(checked["plan"], "r");
    each("check.checks", &checked["checks"], CHECK);
    let order: Vec<&str> = checked["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|f| f["check"].as_str())
        .collect();
    assert_eq!(
        order,
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
    let bucket_only = json_run(&c, &strs(&at(&["check", &url])), 0);
    fields("check", &bucket_only, check_fields);
    assert!(bucket_only["plan"].is_null());

    // apply: a dry run, a run, and a run with nothing left.
    let dry = json_run(&c, &strs(&at(&["apply", "r", "--dry-run"])), 0);
    fields("apply --dry-run", &dry, PLAN);
    fields("apply --dry-run", &dry, PLAN_SHOW);
    fields(
        "apply --dry-run",
        &dry,
        &[("dry_run", Bool), ("guards", Obj), ("remaining", Arr)],
    );
    assert_eq!(dry["dry_run"], true);
    let guard = &[("guard", Str)];
    fields("guards.copies", &dry["guards"]["copies"], guard);
    fields("guards.markers", &dry["guards"]["markers"], guard);
    let remaining = each(
        "apply --dry-run.remaining",
        &dry["remaining"],
        &[
            ("id", Int),
            ("action", Str),
            ("key", Str),
            ("version_id", STR_OR_NULL),
            ("size", INT_OR_NULL),
        ],
    );
    assert_eq!(Some(remaining as u64), shown["actions"].as_u64());
    let apply_fields: &[(&str, Ty)] = &[
        ("plan", Obj),
        ("run", OBJ_OR_NULL),
        ("notes", Arr),
        ("failures_by_code", Obj),
    ];
    let applied = json_run(&c, &strs(&at(&["apply", "r", "--yes"])), 0);
    fields("apply", &applied, apply_fields);
    fields("apply.plan", &applied["plan"], PLAN);
    fields(
        "apply.run",
        &applied["run"],
        &[
            ("done", Int),
            ("failed", Int),
            ("skipped", Int),
            ("drifted", Int),
            ("restoring", Int),
            ("uncertain", Int),
            ("guard", Str),
            ("guards", Obj),
            ("seconds", Num),
            ("requests", Int),
            ("retries", Int),
            ("throttled", Int),
            ("concurrency", Obj),
        ],
    );
    fields(
        "apply.run.concurrency",
        &applied["run"]["concurrency"],
        &[
            ("limit", Int),
            ("bound", Str),
            ("max", Int),
            ("floor_ms", NUM_OR_NULL),
        ],
    );
    fields(
        "apply.run.guards.copies",
        &applied["run"]["guards"]["copies"],
        guard,
    );
    fields(
        "apply.run.guards.markers",
        &applied["run"]["guards"]["markers"],
        guard,
    );
    assert_eq!(
        applied["run"]["guard"],
        applied["run"]["guards"]["copies"]["guard"]
    );
    assert_eq!(applied["plan"]["state"], "applied");
    let nothing = json_run(&c, &strs(&at(&["apply", "r", "--yes"])), 0);
    fields("apply (nothing left)", &nothing, apply_fields);
    assert!(nothing["run"].is_null(), "{nothing:#}");

    // verify.
    let verified = json_run(&c, &strs(&at(&["verify", "r"])), 0);
    fields(
        "verify",
        &verified,
        &[
            ("plan", Str),
            ("keys", Int),
            ("matching", Int),
            ("mismatching", Int),
            ("mismatches", Arr),
            ("requests", Int),
        ],
    );
    assert_eq!(verified["mismatching"], 0);
    // A key written since: a mismatch, with what was expected and found.
    b.put("img/000", b"written after the apply");
    let mismatched = json_run(&c, &strs(&at(&["verify", "r"])), 1);
    let n = each(
        "verify.mismatches",
        &mismatched["mismatches"],
        &[("key", Str), ("expected", Str), ("found", Str)],
    );
    assert_eq!(n, 1);

    // The cleanup made before the restore is stale: plan show says what
    // changed, and apply refuses it in JSON.
    let stale = plan_show(&c, "early");
    fields(
        "plan show.stale",
        &stale["stale"],
        &[("keys", Int), ("changes", Arr)],
    );
    each(
        "plan show.stale.changes",
        &stale["stale"]["changes"],
        &[
            ("revision", Int),
            ("kind", Str),
            ("plan", STR_OR_NULL),
            ("at", Str),
        ],
    );
    let checked = json_run(&c, &strs(&at(&["check", "--plan", "early"])), 0);
    fields(
        "check --plan (stale)",
        &checked["stale"],
        &[("keys", Int), ("changes", Arr)],
    );
    let refused = json_run(&c, &strs(&at(&["apply", "early", "--yes"])), 1);
    fields("apply (refused)", &refused, PLAN);
    fields("apply (refused)", &refused, PLAN_SHOW);
    fields("apply (refused)", &refused, &[("refused", Str)]);

    // A restore --into: where it lands.
    let into = format!("s3://{}/x/", dst.name);
    s3rewind_ok(
        &c,
        &[
            "plan", "restore", "--to", &t, "--into", &into, "--name", "aside",
        ],
    );
    let aside = plan_show(&c, "aside");
    assert_eq!(aside["into"], into.as_str());
    for row in aside["sample"].as_array().expect("sample") {
        fields("plan show.sample (into)", row, &[("lands_at", Str)]);
    }

    // The plan's keys listed again.
    let relisted = json_run(&c, &strs(&at(&["scan", &url, "--keys-of", "r"])), 0);
    fields(
        "scan --keys-of",
        &relisted,
        &[
            ("location", Str),
            ("endpoint", STR_OR_NULL),
            ("keys_of", Str),
            ("keys", Int),
            ("versions", Int),
            ("delete_markers", Int),
            ("requests", Int),
            ("seconds", Num),
        ],
    );

    // status, after all that.
    let status = json_run(&c, &["status"], 0);
    fields(
        "status",
        &status,
        &[("catalog", Obj), ("scan", OBJ_OR_NULL), ("plans", Arr)],
    );
    fields(
        "status.catalog",
        &status["catalog"],
        &[("path", Str), ("bytes", Int), ("readable_by_others", Bool)],
    );
    let scan_fields: &[(&str, Ty)] = &[
        ("location", Str),
        ("bucket", Str),
        ("base_prefix", Str),
        ("endpoint", STR_OR_NULL),
        ("shard", STR_OR_NULL),
        ("versioning", Str),
        ("started_at", Str),
        ("finished_at", STR_OR_NULL),
        ("complete", Bool),
        ("compacted_at", STR_OR_NULL),
        ("runs", Int),
        ("revision", Int),
        ("rescanned_at", STR_OR_NULL),
        ("versions", Int),
        ("delete_markers", Int),
        ("keys", Int),
        ("pages", Int),
        ("prefixes", Int),
        ("ranges", Obj),
        ("sources", Arr),
    ];
    fields("status.scan", &status["scan"], scan_fields);
    assert_eq!(status["scan"]["location"], format!("s3://{}/", b.name));
    assert!(status["scan"]["rescanned_at"].is_string(), "{status:#}");
    fields(
        "status.scan.ranges",
        &status["scan"]["ranges"],
        &[
            ("total", Int),
            ("done", Int),
            ("started", Int),
            ("waiting", Int),
        ],
    );
    assert_eq!(each("status.plans", &status["plans"], PLAN), 3);

    // A catalog built from an inventory report s3sim writes, then a prefix
    // listed again.
    let inv = w.path("inventory");
    let rows = s3sim::report::rows_of(&server.sim().store, &b.name).expect("the bucket's rows");
    let manifest = s3inventory::write_report(
        &inv,
        &b.name,
        s3inventory::Format::Csv,
        &rows,
        1,
        unix_now().as_millis() as i64,
    )
    .expect("write the report");
    let c2 = w.path("from-report.db");
    let ingested = json_run(
        &c2,
        &strs(&at(&[
            "scan",
            &url,
            "--inventory",
            manifest.to_str().expect("utf-8 path"),
        ])),
        0,
    );
    fields(
        "scan --inventory",
        &ingested,
        &[
            ("location", Str),
            ("endpoint", STR_OR_NULL),
            ("finished", Bool),
            ("already_complete", Bool),
            ("inventory", Str),
            ("report_created", Str),
            ("files", Int),
            ("files_read", Int),
            ("rows_read", Int),
            ("versions", Int),
            ("delete_markers", Int),
            ("seconds", Num),
            ("compaction_seconds", NUM_OR_NULL),
            ("sorted", Bool),
            ("tied_keys", Int),
            ("tie_requests", Int),
            ("missing_fields", Arr),
        ],
    );
    let rescanned = json_run(&c2, &strs(&at(&["scan", &url, "--rescan", "img/"])), 0);
    fields(
        "scan --rescan",
        &rescanned,
        &[
            ("location", Str),
            ("endpoint", STR_OR_NULL),
            ("rescanned", Arr),
            ("versions", Int),
            ("delete_markers", Int),
            ("requests", Int),
            ("seconds", Num),
        ],
    );
    let status = json_run(&c2, &["status"], 0);
    fields("status.scan (inventory)", &status["scan"], scan_fields);
    let sources = each(
        "status.scan.sources",
        &status["scan"]["sources"],
        &[
            ("prefix", Str),
            ("kind", Str),
            ("as_of", Str),
            ("manifest", STR_OR_NULL),
            ("missing", Arr),
        ],
    );
    assert!(sources >= 2, "{status:#}");
}
