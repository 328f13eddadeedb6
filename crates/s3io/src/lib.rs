//! Everything s3rewind knows about talking to S3, in one place: building the
//! client (endpoints, path-style, retries, timeouts), listing versions with URL
//! encoding and listing order handled, and turning SDK errors into ones a
//! person can act on. The commands above never see an SDK type.

mod client;
mod error;
mod listing;
pub mod pricing;
pub mod retry;
mod timestamp;
mod urlcode;
mod writes;
mod xml;

pub use client::{ClientOptions, Counters, RawListPage, S3};
pub use error::{ErrorKind, S3Error};
pub use listing::{parse_list_versions, ListPage, ListedEntry};
pub use timestamp::parse_s3_timestamp;
pub use urlcode::{decode_url_component, encode_key};
pub use writes::{CopyRequest, DeleteTarget};

/// What GetBucketVersioning said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Enabled,
    Suspended,
    /// Versioning was never turned on: every object has the version id `null`.
    Never,
}

impl Versioning {
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
            Versioning::Never => "Never enabled",
        }
    }
}
