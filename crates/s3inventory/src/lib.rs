//! s3inventory: Amazon S3 Inventory reports read into entries — the
//! `manifest.json`, and data files in CSV (gzip), Apache ORC or Apache
//! Parquet, each checked against the manifest's MD5 first — and, for tests
//! and benchmarks, written from a bucket's entries in AWS's layout.
//!
//! A report lists every version and delete marker of the bucket as of its
//! `creationTimestamp` when configured with `IncludedObjectVersions=All`;
//! one made without it lacks version ids and is refused. The formats are
//! read with the Apache crates (`csv` + `flate2`, `orc-rust`, `parquet`),
//! a batch at a time: memory stays flat however large a file is.
//!
//! # Layout
//!
//! - `manifest`: [`Manifest`], parsed and checked.
//! - `read`: [`read_file`], one data file's rows.
//! - `write`: [`write_report`], a report made from entries (the test generator).

mod manifest;
mod read;
mod write;

pub use manifest::{DataFile, Format, Manifest};
pub use read::{read_file, Row, Rows};
pub use write::write_report;

/// What can be wrong with a report. Each message names the file and what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path} is not an S3 Inventory manifest: {reason}")]
    Manifest { path: String, reason: String },
    #[error("the inventory report at {path} lists current versions only: it cannot rewind anything\n  hint: configure the inventory with IncludedObjectVersions=All (console: Include all versions) and use a report made after that")]
    CurrentOnly { path: String },
    #[error("the inventory report at {path} is in format {format:?}, which s3rewind does not read (CSV, ORC, Parquet)")]
    UnknownFormat { path: String, format: String },
    #[error("the inventory report at {path} is of bucket {found}, not {expected}\n  hint: pass the manifest of {expected}'s inventory")]
    OtherBucket {
        path: String,
        found: String,
        expected: String,
    },
    #[error("{path}: its MD5 is {found}, the manifest says {expected}: the file is damaged or incomplete\n  hint: copy it again from the inventory's destination bucket")]
    Checksum {
        path: String,
        found: String,
        expected: String,
    },
    #[error("{path}, row {row}: {reason}")]
    Data {
        path: String,
        row: u64,
        reason: String,
    },
}
