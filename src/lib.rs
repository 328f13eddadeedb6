//! The `s3rewind` command line: parses arguments and wires the crates
//! together; every decision about S3, the catalog or a plan is made in the
//! crate that owns it. A library as well as a binary, so that the incident
//! example can run the very commands a person types, in one process.
//!
//! # Layout
//!
//! - `cli`: the arguments (clap), with the help text that teaches them.
//! - `commands`: one module per subcommand.
//! - `output`: numbers, tables, prompts and progress for people, and text
//!   from strangers made safe for a terminal.
//! - `logging`: `-v` and `S3REWIND_LOG`, to standard error between progress redraws.

mod cli;
mod commands;
mod logging;
mod output;

use std::ffi::OsString;

use clap::Parser;

/// Exit codes scripts can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// Work completed, but some actions failed (see `status`).
    pub const COMPLETED_WITH_FAILURES: u8 = 3;
    /// `check` found a hazard that blocks the plan, or apply refused a
    /// plan for one (see `--accept`).
    pub const BLOCKED: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
}

/// An error for the person at the terminal: what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Scan(#[from] inventory::ScanError),
    #[error(transparent)]
    S3(#[from] s3io::S3Error),
    #[error(transparent)]
    Prefix(#[from] inventory::PrefixError),
    #[error(transparent)]
    Time(#[from] model::time::TimeError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    /// apply refused the plan before anything was sent.
    #[error(transparent)]
    Refused(#[from] apply::preflight::Refusal),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Scan(inventory::ScanError::Interrupted) => exit::INTERRUPTED,
            CliError::Apply(apply::ApplyError::Interrupted) => exit::INTERRUPTED,
            CliError::Refused(apply::preflight::Refusal::Blocked { .. }) => exit::BLOCKED,
            _ => exit::ERROR,
        }
    }
}

/// Runs one s3rewind command line (`args` starts with the program name)
/// to its end, printing what it prints; returns its exit code.
pub fn execute<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { exit::OK };
        }
    };
    if let Err(e) = logging::init(cli.global.verbose) {
        eprintln!("error: {}", output::shown_lines(&e));
        return exit::ERROR;
    }
    // Apply runs on this one thread: its work is many small requests, and
    // on a pool each answer, read by the worker that owns the connection,
    // wakes the waiting write on another thread (a futex and a context
    // switch each way; docs/benchmarks.md, "CPU per copy"). Its SQLite
    // writer has a thread of its own either way. The scan parses pages
    // while others are in flight, and keeps the pool.
    let mut builder = match cli.command {
        cli::Command::Apply(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::ERROR;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        // Output piped into `head` or `less` that was closed: nothing to say.
        Err(CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: {}", output::shown_lines(&e.to_string()));
            e.exit_code()
        }
    }
}
