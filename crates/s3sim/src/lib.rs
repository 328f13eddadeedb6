//! s3sim: an in-memory, versioned S3 server for scale tests, fault
//! injection and benchmarks — fast enough never to be the bottleneck,
//! faithful to AWS's versioning semantics, and able to misbehave on purpose.
//!
//! The protocol (routing, SigV4 verification, XML) comes from the `s3s`
//! crate; ListObjectVersions is answered by our own writer, which
//! interleaves versions and delete markers as AWS does. [`Config`] sets
//! latency and faults; [`seed`] builds big buckets directly in memory;
//! [`report`] gives a bucket's S3 Inventory report.
//!
//! # Layout
//!
//! - `store`: the buckets, keys, versions, markers and multipart uploads
//!   (and who wrote each entry); `settings`: what buckets are configured
//!   with (policies among them), what versions carry besides their bytes
//!   (Object Lock, restores); `seed`: big buckets built in memory.
//! - `s3impl`: the operations, on s3s's typed inputs; `route`:
//!   ListObjectVersions, written by hand (`xml`).
//! - How S3 writes, one concern each: `conditions` (If-Match /
//!   If-None-Match on writes and deletes), `checksum` (the checksum kept
//!   with each version), `encryption` (which encryption, and so which
//!   ETag, a new object gets), `ssec` (objects encrypted with a
//!   customer's key, SSE-C), `late` (writes made late, slowly, or not at
//!   all behind a 200).
//! - Who may do it: `auth` (who is calling: principals, `--credentials`,
//!   SigV4 secrets); `access` (the IAM actions each request needs, and the
//!   verdict); `policy` (bucket policies, and the documented patterns
//!   s3sim enforces).
//! - `server`: connections, latency, injected faults, the stats page;
//!   `options`: the command line; `report`: a bucket's inventory report.

mod access;
pub mod auth;
pub mod checksum;
pub mod conditions;
mod encryption;
mod late;
mod options;
pub mod policy;
mod rate;
pub mod report;
mod route;
mod s3impl;
pub mod seed;
mod server;
pub mod settings;
mod ssec;
pub mod store;
pub mod xml;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use options::Options;
pub use server::{serve, Server};
pub use settings::Settings;
pub use store::Store;

/// Probabilities (0–1) of misbehaving, per request unless said otherwise.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer 503 SlowDown.
    pub slow_down: f64,
    /// Answer 500 InternalError.
    pub internal_error: f64,
    /// Per key of a DeleteObjects request: report SlowDown for that key
    /// inside an HTTP 200 body.
    pub delete_slow_down: f64,
    /// Per DeleteObjects request: add to its answer an `<Error>` about a
    /// key that was not asked for (the deletes asked for are made). S3
    /// reports errors only for the keys a request names; a client cannot
    /// tell which of its keys such an error is about.
    pub delete_unmatched: f64,
    /// Send part of the response, then reset the connection.
    pub reset: f64,
    /// Send the response body slowly (in pieces, `slow_body_delay` apart).
    pub slow_body: f64,
    pub slow_body_delay: Duration,
    /// Answer a conditional write 409 ConditionalRequestConflict (as AWS
    /// does when another write to the key races it), writing nothing.
    pub conflict: f64,
    /// Answer a CopyObject, UploadPartCopy or CompleteMultipartUpload
    /// `200 OK` with an `<Error>` body (InternalError), writing nothing.
    pub copy_200_error: f64,
    /// Give a write that makes a new entry no answer (the connection is
    /// dropped) and make it `late_commit_delay` later.
    pub late_commit: f64,
    pub late_commit_delay: Duration,
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    pub access_key: String,
    pub secret_key: String,
    /// Added to every request.
    pub latency: Duration,
    /// Up to this much more, uniformly.
    pub jitter: Duration,
    pub faults: Faults,
    /// Seeds fault decisions (and version ids), for repeatable runs.
    pub seed: u64,
    /// Ignore If-Match / If-None-Match on writes, as some S3-compatible
    /// servers do (to test how a client finds out).
    pub ignore_conditions: bool,
    /// How long a RestoreObject takes to finish.
    pub restore_delay: Duration,
    /// KMS key ids this identity may not use: reading or copying a version
    /// encrypted with one is refused (403 AccessDenied).
    pub denied_kms_keys: Vec<String>,
    /// Whose layout ListObjectVersions answers in (AWS's, or another
    /// S3-compatible server's: see [`xml::Dialect`]).
    pub list_dialect: xml::Dialect,
    /// How long a CopyObject or CompleteMultipartUpload works, sending
    /// whitespace meanwhile.
    pub copy_delay: Duration,
    /// Principals besides the `access_key` pair (which is the root user of
    /// [`auth::DEFAULT_ACCOUNT`], allowed everything); their access keys
    /// must differ from it and from each other.
    pub principals: Vec<auth::KeyPair>,
    /// Writes a second each top-level prefix takes at most (`rate`).
    pub prefix_write_rps: Option<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_key: "s3sim".into(),
            secret_key: "s3sim-secret".into(),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            faults: Faults::default(),
            seed: 1,
            ignore_conditions: false,
            restore_delay: Duration::ZERO,
            denied_kms_keys: Vec::new(),
            list_dialect: xml::Dialect::Aws,
            copy_delay: Duration::ZERO,
            principals: Vec::new(),
            prefix_write_rps: None,
        }
    }
}

macro_rules! ops {
    ($($op:ident),* $(,)?) => {
        /// The operations s3sim counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Op { $($op),* }
        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$op),*];
            pub fn name(self) -> &'static str {
                match self { $(Op::$op => stringify!($op)),* }
            }
        }
    };
}

ops!(
    CreateBucket,
    HeadBucket,
    ListBuckets,
    PutBucketVersioning,
    GetBucketVersioning,
    PutObject,
    GetObject,
    HeadObject,
    DeleteObject,
    DeleteObjects,
    CopyObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    GetObjectTagging,
    PutObjectTagging,
    ListObjectsV2,
    ListObjectVersions,
    RestoreObject,
    BucketConfiguration,
    ObjectLock,
    InjectedSlowDown,
    InjectedInternalError,
    InjectedDeleteSlowDown,
    PrefixSlowDown,
    InjectedReset,
    InjectedSlowBody,
    InjectedConflict,
    Requests,
    InjectedCopy200Error,
    InjectedLateCommit,
    ListMultipartUploads,
    InjectedDeleteUnmatched,
);

/// Requests per operation, readable while the server runs.
#[derive(Debug)]
pub struct Counters([AtomicU64; Op::ALL.len()]);

impl Default for Counters {
    fn default() -> Self {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Counters {
    pub fn get(&self, op: Op) -> u64 {
        self.0[op as usize].load(Ordering::Relaxed)
    }

    fn add(&self, op: Op) {
        self.0[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `name count` lines for every counter that is not zero.
    pub fn report(&self) -> String {
        Op::ALL
            .iter()
            .filter(|op| self.get(**op) > 0)
            .map(|op| format!("{} {}\n", op.name(), self.get(*op)))
            .collect()
    }
}

/// The server's state: the buckets, the behaviour, the counters.
#[derive(Clone)]
pub struct Sim {
    pub store: Arc<Store>,
    pub settings: Arc<Settings>,
    pub config: Arc<Config>,
    pub counters: Arc<Counters>,
    dice: Arc<AtomicU64>,
    /// Every key pair requests may be signed with.
    pub keys: Arc<auth::Keys>,
    rates: Option<Arc<rate::PrefixRates>>,
}

impl Sim {
    pub fn new(config: Config) -> Sim {
        Sim {
            keys: Arc::new(auth::Keys::new(
                &config.access_key,
                &config.secret_key,
                &config.principals,
            )),
            store: Arc::new(Store::new(config.seed)),
            settings: Arc::default(),
            dice: Arc::new(AtomicU64::new(config.seed)),
            rates: config
                .prefix_write_rps
                .map(|r| Arc::new(rate::PrefixRates::new(r))),
            config: Arc::new(config),
            counters: Arc::default(),
        }
    }

    fn count(&self, op: Op) {
        self.counters.add(op);
    }

    /// True with probability `p` (deterministic sequence from the seed).
    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let n = store::splitmix64(
            self.dice
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed),
        );
        (n >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn fault_conflict(&self) -> bool {
        let hit = self.roll(self.config.faults.conflict);
        if hit {
            self.count(Op::InjectedConflict);
        }
        hit
    }

    fn fault_delete_unmatched(&self) -> bool {
        let hit = self.roll(self.config.faults.delete_unmatched);
        if hit {
            self.count(Op::InjectedDeleteUnmatched);
        }
        hit
    }

    /// One write to `key`: false when its prefix is over `--prefix-write-rps`.
    fn write_allowed(&self, bucket: &str, key: &str) -> bool {
        let allowed = self.rates.as_ref().is_none_or(|r| r.take(bucket, key));
        if !allowed {
            self.count(Op::PrefixSlowDown);
        }
        allowed
    }

    fn fault_delete_slowdown(&self) -> bool {
        let hit = self.roll(self.config.faults.delete_slow_down);
        if hit {
            self.count(Op::InjectedDeleteSlowDown);
        }
        hit
    }
}
