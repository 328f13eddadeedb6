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
//! - `write`: [`write_report`], a report made from entries (the test
//!   generator), also without the optional fields ([`write_report_without`]).

mod manifest;
mod read;
mod write;

pub use manifest::{DataFile, Field, Format, Manifest};
pub use read::{read_file, Row, Rows};
pub use write::{write_report, write_report_without};

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
    /// A report without LastModifiedDate (an optional field of the
    /// configuration): every entry would date from 1970, and every rule
    /// that reads a time would act on all of them.
    #[error("the inventory report at {path} has no LastModifiedDate field: without each version's time nothing can be rewound\n  hint: add \"Last modified date\" to the inventory configuration's fields and use a report made after that, or scan the bucket by listing it (without --inventory)")]
    NoTimes { path: String },
    /// A report without a field plans rely on, not allowed by the person.
    #[error("the inventory report at {path} has no {} field: {}\n  hint: add it to the inventory configuration's fields and use a report made after that; or pass --allow-missing {} to build the catalog without it (status, plan show, check and the report will say so)", .field.name(), .field.what_is_lost(), .field.flag())]
    MissingField { path: String, field: Field },
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
