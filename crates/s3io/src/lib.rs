//! Everything s3rewind knows about talking to S3, in one place: building
//! the client, the one call policy every request goes through (rate,
//! adaptive concurrency, classification, the retry budget), listing
//! versions with URL encoding and S3's order handled and every page
//! checked, and the writes that must happen exactly once. The crates above
//! never see an SDK type, and none of them loops on an S3 error.
//!
//! # Layout
//!
//! - `client`: [`S3`], the client and its configuration.
//! - [`pacer`]: the call policy; its doc comment is the retry budget.
//! - `download`: an object's bytes into a local file.
//! - `endpoint`: the SDK's endpoint rules, run once per bucket.
//! - `error`: [`S3Error`] and [`ErrorKind`], errors classified by what to do about them.
//! - `listing`: ListObjectVersions pages parsed, and checked against their request.
//! - `pager`: [`VersionPager`], one prefix's chain of pages.
//! - `probe`: the newest entry of given keys, adjacent keys sharing pages.
//! - `settings`: a bucket's configuration, one version's lock and archive
//!   state (HeadObject), RestoreObject.
//! - `writes`: DeleteObjects batches, and copies and new markers made once,
//!   each on its condition; the probe of whether the endpoint honours them.
//! - `urlcode`, `xml`: the encodings S3 answers in.

mod client;
mod download;
mod endpoint;
mod error;
mod gate;
pub mod limit;
mod listing;
pub mod pacer;
mod pager;
pub mod probe;
mod settings;
mod urlcode;
mod writes;
mod xml;

pub use client::{ClientOptions, S3};
pub use error::{ErrorKind, S3Error};
pub use listing::{check_page, parse_list_versions, ListPage, ListRequest};
pub use pacer::{partition_of, Pace};
pub use pager::VersionPager;
pub use settings::RestoreStarted;
pub use urlcode::decode_url_component;
pub use writes::{
    multipart_etag, Condition, CopyRequest, DeleteTarget, Journal, Landed, Look, Seen, Support,
    Write, Written,
};
