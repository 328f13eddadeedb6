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
#[command(name = "s3rewind", version, about, long_about, max_term_width = 100)]
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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every object version and delete marker into the catalog.
    ///
    /// Pages ListObjectVersions for each prefix, --concurrency prefixes at a
    /// time, and commits each page together with its cursor. Run the same
    /// command again after an interruption and it resumes where it stopped.
    #[command(after_help = "Examples:\n  \
        s3rewind scan s3://my-bucket\n  \
        s3rewind scan s3://my-bucket/images/ --prefix hotels/ --prefix cities/\n  \
        s3rewind scan s3://my-bucket --prefixes prefixes.txt --concurrency 128")]
    Scan(ScanArgs),
    /// Show what the catalog holds: the scan's state and totals.
    Status,
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
    /// Prefixes listed at the same time.
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
}
