//! The `s3rewind` command: parses arguments and wires the crates together.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes scripts can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// Work completed, but some actions failed (see `status`).
    pub const COMPLETED_WITH_FAILURES: u8 = 3;
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
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Scan(inventory::ScanError::Interrupted) => exit::INTERRUPTED,
            CliError::Apply(apply::ApplyError::Interrupted) => exit::INTERRUPTED,
            _ => exit::ERROR,
        }
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
