//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Repair versioned S3 buckets after mass mistakes: rewind to a point in time,
/// undelete, clean up noncurrent versions — resumably, at millions of objects.
///
/// The work goes in three steps around one SQLite catalog file:
///
///   1. `scan`  lists every version and delete marker into the catalog;
///   2. `plan`  turns a rule or SQL into reviewable actions (offline);
///   3. `apply` executes a reviewed plan against S3.
///
/// Every step can be interrupted and run again to resume.
#[derive(Debug, Parser)]
#[command(
    name = "s3rewind",
    version,
    about,
    long_about,
    max_term_width = 100,
    verbatim_doc_comment
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The catalog file (SQLite).
    #[arg(
        long,
        global = true,
        env = "S3REWIND_CATALOG",
        default_value = "./s3rewind.db"
    )]
    pub catalog: PathBuf,
    /// S3-compatible endpoint (MinIO, Ceph, a local server); uses path-style
    /// addressing. Default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region. Default: AWS_REGION, the profile's region, else us-east-1.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config. Default: AWS_PROFILE.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Log to standard error: -v what s3rewind and the AWS SDK decide
    /// (retries, throttling, endpoints), -vv their details. S3REWIND_LOG
    /// (e.g. "s3io=debug,aws_smithy_runtime=debug") chooses instead.
    /// Credentials and request signatures are never logged.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `--json`: one JSON object on standard output instead of text (progress
/// and messages stay on standard error). docs/json.md lists the fields.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print one JSON object instead of text (fields: docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every object version and delete marker into the catalog.
    ///
    /// Lists the location as key ranges, --concurrency of them at a time:
    /// without a prefix list, s3rewind cuts the bucket into ranges itself (at
    /// the first level of its hierarchy, then wherever a request slot would
    /// otherwise stay idle, so that all of them stay busy to the end). Each
    /// page is committed together with its range's cursor: run the same
    /// command again after an interruption and it resumes where it stopped.
    #[command(after_help = "Examples:\n  \
        s3rewind scan s3://my-bucket\n  \
        s3rewind scan s3://my-bucket/images/ --prefix hotels/ --prefix cities/\n  \
        s3rewind scan s3://my-bucket --prefixes prefixes.txt --concurrency 128\n  \
        s3rewind split s3://my-bucket --parts 8 > bounds.txt   # then, on machine I of 8:\n  \
        s3rewind --catalog part-I.db scan s3://my-bucket --shard I/8 --bounds bounds.txt")]
    Scan(ScanArgs),
    /// Cut a location into parts to scan on many machines (see scan --shard).
    ///
    /// Prints the N - 1 keys between the parts, URL-encoded, one a line.
    /// Each machine then runs `scan --shard I/N --bounds FILE` into a
    /// catalog of its own, and plans and applies on its own: every rule
    /// decides key by key. docs/scale.md shows it as a Kubernetes indexed
    /// Job and an AWS Batch array job.
    ///
    /// The cuts fall between the keys the location holds, wherever they
    /// start and however long a prefix they share: from its first key on, a
    /// few hundred one-entry listings find where its keys differ, and
    /// estimate how many keys each part of it holds by taking the parts
    /// they did not explore to be like those they did. Where the keys are
    /// uniform at some depth (numbered, hashed, under one long prefix),
    /// each part holds about as many. What it cannot balance: it counts
    /// keys, not versions, so one key holding most of the versions makes
    /// its part big; and a key space far from uniform (one sub-prefix
    /// holding most of the keys among others holding few) can be cut far
    /// from even. -v or --json print each part's estimated share and the
    /// requests spent.
    #[command(after_help = "Examples:\n  \
        s3rewind split s3://my-bucket --parts 8 --out bounds.txt\n  \
        s3rewind -v split s3://my-bucket/images/ --parts 100 --out bounds.txt   # with each part's share")]
    Split(SplitArgs),
    /// Show what the catalog holds: the scan's state and totals, and each plan's progress.
    Status(JsonArg),
    /// When did it go wrong? Writes, overwrites and deletes over time, from the catalog.
    ///
    /// One bar per time slot (--by, or a slot size chosen to fit the span),
    /// scaled to the terminal's width. Slots far above the location's usual
    /// rate are marked as a burst, and the last quiet second before the
    /// first burst is suggested as the time to restore to. A write is a
    /// version of a key that had none (or was deleted); an overwrite, a
    /// version on top of another version; a delete, a delete marker.
    #[command(after_help = "Examples:\n  \
        s3rewind timeline\n  \
        s3rewind timeline --by minute --since 2024-05-01T13:00:00Z --until 2024-05-01T15:00:00Z\n  \
        s3rewind timeline --where \"key LIKE 'hotels/%'\" --json")]
    Timeline(TimelineArgs),
    /// Make, list, show and drop plans: reviewable actions computed offline.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// What in the bucket's configuration would hurt a plan: run it before apply.
    ///
    /// Reads the bucket's versioning and MFA Delete, lifecycle rules, Object
    /// Lock, replication, default encryption, Requester Pays and ownership
    /// controls. With --plan, judges the plan's remaining actions against
    /// them: versions a lifecycle rule expires before apply can use them
    /// (rule id and date), deletes Object Lock refuses (each version asked,
    /// only when the bucket has Object Lock), copies whose source is in an
    /// archive, KMS keys the credentials cannot use (one read per key found
    /// among a sample of sources), writes replication carries again. One
    /// line per check: ok, warn or block, how many actions, and the fix.
    /// apply runs the same checks and refuses a plan with a block unless
    /// --accept names it. Exits 4 when something blocks, 0 otherwise.
    #[command(after_help = "Examples:
          s3rewind check                       # the catalog's bucket
          s3rewind check s3://my-bucket
          s3rewind check --plan restore-1 --json")]
    Check(CheckArgs),
    /// Run a read-only SQL query on the catalog.
    ///
    /// The query may only read: writes, ATTACH and state-changing PRAGMAs are
    /// refused before anything runs. See docs/catalog.md and docs/review.md.
    #[command(after_help = "Examples:\n  \
        s3rewind sql \"SELECT action, count(*) FROM plan_review WHERE plan = 'restore-1' GROUP BY 1\"\n  \
        s3rewind sql --csv \"SELECT * FROM key_history WHERE key = 'hotels/0001.jpg' ORDER BY seq\"")]
    Sql(SqlArgs),
    /// Write a plan's actions to a file: CSV, or an S3 Batch Operations manifest.
    Export(ExportArgs),
    /// Execute a reviewed plan against S3.
    ///
    /// Shows the plan's summary and asks before the first call (--yes skips
    /// the question; without a terminal, --yes is required). Deletes go in
    /// batches of up to 1000 per DeleteObjects request; copies and new delete
    /// markers run in parallel. Throttling slows apply down, never stops it.
    /// Interrupt it at any point and run it again: it finishes the plan and
    /// does nothing twice. Exits 3 if some actions failed (see `status`).
    ///
    /// Each write carries the strongest guard S3 offers for it, so that a
    /// key written after the scan is left alone (`drifted`): copies
    /// If-Match the key's newest ETag, or If-None-Match: * where it had no
    /// current object (on CopyObject; on CompleteMultipartUpload for
    /// multipart copies); new delete markers If-Match (a conditional
    /// DeleteObject). Deletes of a given version take no condition in S3:
    /// --verify lists each key first. Where the endpoint ignores (or may
    /// ignore) a kind of condition, found by a probe before the question
    /// and said there, each key is listed first instead. A write whose
    /// answer was lost is recorded as made only on proof; otherwise it is
    /// `uncertain`, never sent again, and `plan resolve` settles it.
    #[command(after_help = "Examples:\n  \
        s3rewind apply restore-1 --dry-run\n  \
        s3rewind apply restore-1 --verify\n  \
        s3rewind apply restore-1 --yes --concurrency 128 --max-rps 3000")]
    Apply(ApplyArgs),
    /// Check that the bucket is where an applied plan meant it to be.
    ///
    /// Lists every key the plan acts on (adjacent keys share requests) and
    /// compares it with the state the plan reaches from what the scan saw:
    /// the newest entry (a restored version's content, a deleted key's
    /// delete marker) and the absence of every version and marker the plan
    /// removes. Prints the mismatches; exits 0 when every key matches, 1
    /// otherwise.
    #[command(after_help = "Examples:\n  \
        s3rewind verify restore-1\n  \
        s3rewind verify restore-1 --json > verified.json")]
    Verify(VerifyArgs),
    /// Write a plan's report as one self-contained HTML file, for the person who says yes.
    ///
    /// What the plan does in plain words, its counts by action and by
    /// top-level prefix, bytes and cost, the timeline with the plan's time
    /// marked, a sample of keys now and after the plan, and — once applied —
    /// progress and failures; beside each figure, the SQL that reproduces
    /// it. No network is needed to read it: styles and the chart are inline.
    #[command(after_help = "Example:\n  \
        s3rewind report restore-1 --out restore-1.html")]
    Report(ReportArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    #[command(after_help = "Examples:\n  \
        s3rewind completions bash > /etc/bash_completion.d/s3rewind\n  \
        s3rewind completions zsh > \"${fpath[1]}/_s3rewind\"\n  \
        s3rewind completions fish > ~/.config/fish/completions/s3rewind.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), made from the same definitions as --help.
    #[command(after_help = "Example:\n  \
        s3rewind man > s3rewind.1 && man ./s3rewind.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan's name.
    pub name: String,
    /// Requests in flight at most: the upper bound of a limit that adapts,
    /// starting at 64, growing while the round trip stays near its floor
    /// and shrinking when answers slow down (a queue at S3, on the way, or
    /// this machine's CPU) or fail; the progress line and the summary say
    /// where it settled and why. Where S3 answers 503 SlowDown, that prefix
    /// gets fewer, and more again as its answers come back clean.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    /// Action ids per block (a worker's unit of work and commit).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub block_size: u32,
    /// Print what would be done; call nothing that writes, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Start at most this many requests per second (a positive number).
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub max_rps: Option<f64>,
    /// Before acting on a key, check that its newest entry is exactly what
    /// the catalog expects (what the scan saw, or what this plan's own
    /// actions lead to); if someone changed it since — a new write, or a
    /// removed marker or version — leave its actions `drifted` (one LIST
    /// request per key). Without it, copies and new delete markers still
    /// carry their condition; deletes of a given version cannot.
    #[arg(long)]
    pub verify: bool,
    /// Send nothing new: find out what became of the actions a stopped or
    /// killed run left in flight (done, not sent, or uncertain), so that
    /// `plan undo` can be made at once.
    #[arg(long, conflicts_with_all = ["dry_run", "retry_failed"])]
    pub settle: bool,
    /// Apply a plan that was undone (its undo applied) all the same.
    #[arg(long)]
    pub reapply: bool,
    /// Try actions that failed in an earlier run again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Copy sources larger than this many bytes through multipart upload
    /// (S3 copies at most 5 GiB at once).
    #[arg(long, value_name = "BYTES", default_value_t = model::limits::SINGLE_COPY_LIMIT)]
    pub multipart_threshold: u64,
    /// Part size of multipart copies in bytes (at least 5 MiB; default 512 MiB,
    /// more for objects that would need over 10,000 parts).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(5 * 1024 * 1024..))]
    pub part_size: Option<u64>,
    /// Go ahead although `check` blocks the plan for RISK (repeatable):
    /// versioning, mfa-delete, lifecycle, object-lock, kms, policy, sse-c. With
    /// object-lock, the versions S3 keeps are recorded as skipped, with why.
    #[arg(long, value_name = "RISK", value_parser = clap::builder::PossibleValuesParser::new(check::RISKS))]
    pub accept: Vec<String>,
    /// Retrieval tier of the restores asked for copies whose source is in
    /// an archive (GLACIER, DEEP_ARCHIVE, Intelligent-Tiering archive tiers).
    #[arg(long, value_name = "TIER", default_value = "Standard", value_parser = ["Standard", "Bulk", "Expedited"])]
    pub archive_tier: String,
    /// Days a restored archive version stays readable (GLACIER and
    /// DEEP_ARCHIVE; Intelligent-Tiering takes none).
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(i32).range(1..=30_000))]
    pub archive_days: i32,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The bucket (s3://BUCKET); default: the catalog's.
    pub bucket: Option<String>,
    /// Judge this plan's remaining actions too.
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// HeadObject requests in flight at most (per-object checks): the upper
    /// bound of a limit that adapts to the round trip, as apply's does.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `--max-rps`: a rate that lets requests go (not 0, not NaN, not ∞).
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{text:?} is not a positive number of requests per second (e.g. 3000, or 0.5)"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Rewind keys to how they were at a point in time.
    ///
    /// Per key, the state at TIME is its newest entry written at or before
    /// TIME. Default (non-destructive) mode: where data was written after
    /// TIME, copy the version current at TIME back on top; where only delete
    /// markers were added, remove them; where the key did not exist (or was
    /// deleted) at TIME but is live now, add a delete marker. Nothing is ever
    /// permanently deleted. --mode rollback instead permanently deletes every
    /// version and delete marker written after TIME.
    #[command(after_help = "Examples:\n  \
        s3rewind plan restore --to 2024-05-01T14:00:00Z\n  \
        s3rewind plan restore --to 2024-05-01T16:00:00+02:00 --where \"key LIKE 'hotels/%'\" --name hotels\n  \
        s3rewind plan restore --to 2024-05-01T14:00:00Z --into s3://scratch-bucket/rewound/")]
    Restore(RestoreArgs),
    /// Bring back keys whose newest entry is a delete marker.
    ///
    /// Removes the delete markers stacked above each such key's newest
    /// version; no data is copied. Keys with no version at all are reported,
    /// not planned.
    Undelete(UndeleteArgs),
    /// Permanently delete old noncurrent versions (as a lifecycle rule would).
    ///
    /// A version is noncurrent from the moment a newer version or delete
    /// marker was written over it.
    #[command(after_help = "Examples:\n  \
        s3rewind plan expire --noncurrent-older-than 30d\n  \
        s3rewind plan expire --noncurrent-older-than 7d --keep-newest 3 --expired-markers")]
    Expire(ExpireArgs),
    /// A plan from your own SELECT of (action, key, version_id[, why]).
    ///
    /// action is delete_version, delete_marker, copy_version or
    /// add_delete_marker (whose version_id is NULL). Every row is checked
    /// against the catalog; one bad row and no plan is made.
    #[command(after_help = "Example:\n  \
        s3rewind plan sql --name tmp-cleanup --query \"SELECT 'delete_version', key, version_id FROM objects WHERE key LIKE 'tmp/%' AND NOT is_latest\"")]
    Sql(PlanSqlArgs),
    /// The inverse of an applied plan: take back what apply did.
    ///
    /// Made from what apply recorded of each action: the copies it made are
    /// deleted, the delete markers it added are removed, and a key whose
    /// top delete marker it removed is hidden again by a new one. Versions a
    /// plan deleted for good (--mode rollback, expire) cannot come back:
    /// they are counted, not planned. Review and apply it like any plan.
    #[command(after_help = "Example:\n  \
        s3rewind plan undo restore-1 && s3rewind plan show undo-1 && s3rewind apply undo-1")]
    Undo {
        /// The applied plan to take back.
        #[arg(value_name = "PLAN")]
        plan: String,
        #[command(flatten)]
        name: NameArg,
    },
    /// Settle an uncertain action: say whether the version S3 shows is its own.
    ///
    /// An action is uncertain when its call's answer was lost (a kill, a
    /// timeout, a 500) and the key then showed a version that may or may
    /// not be the one it made: a delete marker (S3 tells no marker from
    /// another), or a copy whose content could not be matched. apply never
    /// sends it again; `plan_review` shows its `candidate_version_id` and
    /// why. `--ours`: the candidate is the action's result (`plan undo`
    /// then takes it back). `--not-ours`: someone else wrote it (the action
    /// becomes drifted); with no candidate, the call did not land and the
    /// next apply sends it again. docs/runbook.md says how to decide.
    #[command(after_help = "Example:\n  \
        s3rewind sql \"SELECT id, key, candidate_version_id, error FROM plan_review WHERE plan = 'r' AND status = 'uncertain'\"\n  \
        s3rewind plan resolve r 17 --ours")]
    Resolve {
        /// The plan.
        #[arg(value_name = "PLAN")]
        plan: String,
        /// The uncertain actions' ids (plan_review.id).
        #[arg(value_name = "ACTION", required = true)]
        actions: Vec<i64>,
        /// The candidate version is the action's own.
        #[arg(
            long,
            conflicts_with = "not_ours",
            required_unless_present = "not_ours"
        )]
        ours: bool,
        /// It is not.
        #[arg(long)]
        not_ours: bool,
    },
    /// List the plans with their progress.
    List(JsonArg),
    /// Show a plan: actions by kind, keys affected, bytes to copy, requests and cost, a sample.
    Show {
        /// The plan's name.
        name: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Delete a plan and its actions (not the scan).
    Drop {
        /// The plan's name.
        name: String,
        /// Do not ask, even if the plan was partly applied.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct WhereArg {
    /// Only keys (restore, undelete: judged by the key's newest entry, so a
    /// condition on the key's name is what works, e.g. "key LIKE
    /// 'hotels/%'") or versions (expire: e.g. "size > 1e6") for which this
    /// SQL expression over key_history's columns is true.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The plan's name (default: RULE-N, the first free N).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestoreMode {
    /// Copy old versions back and add/remove delete markers; deletes nothing.
    Copy,
    /// Permanently delete everything written after TIME (destructive).
    Rollback,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The point in time: RFC 3339 (2024-05-01T14:00:00Z, …+02:00) or YYYY-MM-DD[THH:MM:SS] in UTC.
    #[arg(long, value_name = "TIME")]
    pub to: String,
    #[command(flatten)]
    pub name: NameArg,
    #[command(flatten)]
    pub filter: WhereArg,
    /// Leave keys alone that did not exist (or were deleted) at TIME but are live now.
    #[arg(long)]
    pub keep_new_keys: bool,
    /// Plan even if TIME is before the oldest entry in the catalog, which
    /// hides every key (refused otherwise: it is usually a wrong date).
    #[arg(long)]
    pub allow_before_data: bool,
    #[arg(long, value_enum, default_value_t = RestoreMode::Copy)]
    pub mode: RestoreMode,
    /// Copy the version of TIME back even onto keys whose newest version
    /// already holds its bytes (an earlier apply's copy of it, or the same
    /// size and single-part ETag), which are otherwise left alone as
    /// "already as at TIME": to bring back metadata, tags or an ACL that a
    /// job changed without changing the bytes (a listing shows none of them).
    #[arg(long)]
    pub copy_same_content: bool,
    /// Restore elsewhere: copy each key's version of TIME to s3://OTHER[/PREFIX]
    /// (PREFIX replaces the scanned base in every key), leaving the bucket
    /// as it is — to inspect a rewind before doing it in place. Keys absent
    /// or deleted at TIME are not written. verify and undo work for it too.
    #[arg(long, value_name = "S3_URL", conflicts_with_all = ["keep_new_keys", "mode"])]
    pub into: Option<String>,
}

#[derive(Debug, Args)]
pub struct UndeleteArgs {
    /// Only keys whose newest delete marker was written at or after TIME.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only keys whose newest delete marker was written at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    #[command(flatten)]
    pub filter: WhereArg,
    #[command(flatten)]
    pub name: NameArg,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// Delete versions noncurrent for longer than this: 30d, 12h, 90m, 2w, 1d12h.
    #[arg(long, value_name = "DURATION")]
    pub noncurrent_older_than: String,
    /// Keep this many of each key's newest noncurrent versions, however old.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_newest: u32,
    /// Also remove the delete markers of keys left with no version at all.
    #[arg(long)]
    pub expired_markers: bool,
    /// Judge ages as of this time instead of now (for reproducible plans).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub filter: WhereArg,
    #[command(flatten)]
    pub name: NameArg,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["query", "file"])))]
pub struct PlanSqlArgs {
    /// The plan's name.
    #[arg(long)]
    pub name: String,
    /// The SELECT.
    #[arg(long)]
    pub query: Option<String>,
    /// A file holding the SELECT.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One SELECT (or read-only PRAGMA).
    pub query: String,
    /// Print CSV with a header row (values exactly as stored).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print a JSON array of objects (values exactly as stored).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Every column of every action.
    Csv,
    /// Bucket,Key,VersionId of the copy actions (S3 Batch Operations manifest).
    S3Batch,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The plan's name.
    pub name: String,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here instead of standard output (never onto the catalog or
    /// its companion files).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// CSV: keep every cell's exact bytes. By default a cell a spreadsheet
    /// would run as a formula (starting with = + - @) gets a ' in front.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// What to scan: s3://BUCKET or s3://BUCKET/BASE (BASE is a key prefix,
    /// taken literally: s3://b/img also covers img2/…).
    #[arg(value_name = "S3_URL")]
    pub url: String,
    /// A prefix, relative to BASE, to list in parallel with the others
    /// (repeatable). Prefixes must not overlap. None: all of BASE.
    #[arg(long = "prefix", value_name = "P")]
    pub prefixes: Vec<String>,
    /// A file of prefixes, one a line (blank lines and # comments ignored).
    #[arg(long = "prefixes", value_name = "FILE")]
    pub prefixes_file: Option<PathBuf>,
    /// ListObjectVersions requests in flight at most: key ranges listed at
    /// the same time.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    /// Entries requested per ListObjectVersions page (S3 returns at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub page_size: i32,
    /// Discard the catalog (scan, plans and their history) and scan from scratch.
    #[arg(long)]
    pub fresh: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Scan only part I of N of the location, as cut by `s3rewind split …
    /// --parts N` (--bounds names its output). I counts from 0, to N - 1:
    /// as a Kubernetes indexed Job's JOB_COMPLETION_INDEX and an AWS Batch
    /// array job's AWS_BATCH_JOB_ARRAY_INDEX do.
    #[arg(long, value_name = "I/N", requires = "bounds", conflicts_with_all = ["prefixes", "prefixes_file"])]
    pub shard: Option<String>,
    /// The file `s3rewind split` wrote: N - 1 URL-encoded keys, one a line.
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub bounds: Option<PathBuf>,
    /// List only the keys of plan PLAN again (adjacent keys share
    /// requests) and replace their entries in the finished scan — after
    /// apply found keys drifted, say — so that a new plan sees them as they
    /// are now. Plans made before must then be made again.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["prefixes", "prefixes_file", "shard", "fresh"])]
    pub keys_of: Option<String>,
    /// Build the catalog from an S3 Inventory report instead of listing:
    /// MANIFEST is its manifest.json, s3://… or a local copy of the
    /// report's directory (read offline). The report must list all
    /// versions (IncludedObjectVersions=All); its files (CSV, ORC or
    /// Parquet) are checked against the manifest's MD5s, read in parallel
    /// and committed one at a time: run the same command again after an
    /// interruption and it resumes at the first unfinished file.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["shard", "bounds", "keys_of"])]
    pub inventory: Option<String>,
    /// Build the catalog from a report whose inventory configuration left
    /// out this field: etag or size (repeatable). status, plan show, check
    /// and the report then say what is lost: without ETags, copies are not
    /// conditioned on the key being as the report saw it; without sizes,
    /// copies over 5 GiB are not recognised. A report without
    /// LastModifiedDate is always refused.
    #[arg(long, value_name = "FIELD", requires = "inventory", value_parser = ["etag", "size"])]
    pub allow_missing: Vec<String>,
    /// List this prefix (relative to BASE) again and replace the entries
    /// of every key under it with what S3 lists now (repeatable): after
    /// `--inventory`, the prefixes the incident touched since the report
    /// was made. Plans made before must then be made again.
    #[arg(long, value_name = "PREFIX", conflicts_with_all = ["shard", "bounds", "keys_of"])]
    pub rescan: Vec<String>,
    /// A file of prefixes to list again, one a line (as --rescan).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["shard", "bounds", "keys_of"])]
    pub rescan_file: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// What to cut: s3://BUCKET or s3://BUCKET/BASE.
    #[arg(value_name = "S3_URL")]
    pub url: String,
    /// How many parts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub parts: u32,
    /// Write the keys here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlotSize {
    Second,
    Minute,
    Hour,
    Day,
}

impl SlotSize {
    pub fn seconds(self) -> i64 {
        match self {
            SlotSize::Second => 1,
            SlotSize::Minute => 60,
            SlotSize::Hour => 3600,
            SlotSize::Day => 86_400,
        }
    }
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Only entries for which this SQL expression over key_history's
    /// columns is true, e.g. "key LIKE 'hotels/%'".
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
    /// The size of a time slot (default: chosen so the span fits about 60 slots).
    #[arg(long, value_enum)]
    pub by: Option<SlotSize>,
    /// Only entries written at or after TIME.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only entries written at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The plan's name.
    pub name: String,
    /// Where to write the HTML file (default: NAME.html in the current directory).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The plan's name.
    pub name: String,
    /// ListObjectVersions requests in flight at most: the upper bound of a
    /// limit that adapts to the round trip, as apply's does.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    #[command(flatten)]
    pub json: JsonArg,
}
