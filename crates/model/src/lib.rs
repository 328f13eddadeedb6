//! The vocabulary every s3rewind stage shares, and nothing else: what a
//! listing yields and the catalog stores ([`Entry`]), what a plan asks of S3
//! ([`ActionKind`]), where a catalog points ([`Location`], [`Versioning`]), what a bucket is
//! configured with ([`bucket`]),
//! S3's limits and prices ([`limits`]), how keys are written into copy
//! sources and manifests ([`encode_key`]), and the one way s3rewind writes
//! and reads time as text ([`time`]).
//!
//! No I/O and no heavy dependencies: the offline crates (`plan`, `catalog`)
//! and the online ones (`s3io`, `inventory`, `apply`) all build on it
//! without knowing each other.
//!
//! # Layout
//!
//! - `entry`: [`Entry`], one object version or delete marker, and its
//!   [`Etag`] as the catalog stores it.
//! - `action`: [`ActionKind`], the four things a plan can ask of S3, and
//!   [`Attribution`], how a version is known to be an action's.
//! - [`bucket`]: a bucket's configuration and one version's lock and archive state.
//! - [`content`]: when two versions of a key hold the same bytes (apply's
//!   journal, or size and a single-part ETag).
//! - `location`: [`Location`] and [`Versioning`].
//! - `keys`: [`encode_key`] for `x-amz-copy-source` and Batch Operations
//!   manifests, and [`xml_safe`] for the keys an XML request can carry.
//! - [`limits`]: S3's request limits and list prices, and what a plan's apply costs.
//! - [`time`]: timestamps and durations as people and S3 write them.

mod action;
pub mod bucket;
pub mod content;
mod entry;
mod keys;
pub mod limits;
mod location;
pub mod time;

pub use action::{ActionKind, Attribution};
pub use entry::{Entry, EntryRef, Etag};
pub use keys::{encode_key, xml_safe};
pub use location::{Destination, Location, Versioning};
