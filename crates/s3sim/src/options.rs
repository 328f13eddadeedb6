//! The server's command line, also how tests and examples start one in
//! their own process (`Options::parse_from(["s3sim", "--seed-bucket", …])`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::auth::CredentialsFile;
use crate::seed::{KeyShape, SeedSpec};
use crate::store::StoreError;
use crate::{Config, Faults, Sim};

/// An in-memory, versioned S3 server for tests and benchmarks: fast,
/// faithful to AWS's versioning semantics, and able to misbehave on purpose.
///
/// Requests must be SigV4-signed with a known key pair (--access-key, or one
/// of --credentials); use path-style addressing (http://ADDR/BUCKET/KEY).
/// Each request is authorized by the IAM actions S3 requires for it. Bucket
/// policies are stored and given back as sent, but s3sim is no policy
/// evaluator: it enforces only the statements of the S3 user guide's
/// "Enforce conditional writes" and "Enforce conditional deletes" patterns
/// (conditions on s3:if-match, s3:if-none-match, s3:ObjectCreationOperation);
/// other statements have no effect. GET /_s3sim/stats shows the request
/// counters, which are also printed on exit.
#[derive(Debug, Parser)]
#[command(name = "s3sim", version, max_term_width = 100)]
#[command(
    after_help = "Example: a bucket of 1 M versions over 32 prefixes, 20 ms per request\n  \
    s3sim --listen 127.0.0.1:9000 --latency-ms 20 \\\n    \
    --seed-bucket big --seed-keys 500000 --seed-versions 2 --seed-prefixes 32"
)]
pub struct Options {
    /// Address to listen on (port 0: any free port; see --addr-file).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// Write the bound address (host:port) to this file once listening.
    #[arg(long, value_name = "FILE")]
    pub addr_file: Option<PathBuf>,
    /// The access key of the root user of account 123456789012, which may
    /// do everything (bucket policies that enforce conditional writes or
    /// deletes apply to it too).
    #[arg(long, default_value = "s3sim")]
    pub access_key: String,
    /// Its secret key.
    #[arg(long, default_value = "s3sim-secret", hide_default_value = true)]
    pub secret_key: String,
    /// More principals: a JSON list of {"access_key", "secret_key",
    /// "account_id" (12 digits), "arn" (arn:aws:iam::ACCOUNT:user/NAME,
    /// …:role/NAME, …:root, or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION),
    /// "canonical_id" (optional, 64 hex digits), "allow": ["s3:GetObject",
    /// "s3:Get*", "s3:*", …]}. Each may do only what "allow" names (and what
    /// a bucket policy grants it); every version and delete marker records
    /// who made it.
    #[arg(long, value_name = "FILE", value_parser = CredentialsFile::read)]
    pub credentials: Option<CredentialsFile>,
    /// Latency added to every request.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub latency_ms: f64,
    /// Up to this much more latency, uniformly distributed.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub jitter_ms: f64,

    /// Create this versioned bucket, filled in memory, at start.
    #[arg(long, value_name = "NAME")]
    pub seed_bucket: Option<String>,
    /// Keys in the seeded bucket.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub seed_keys: u64,
    /// Entries (versions and delete markers) per key.
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub seed_versions: u32,
    /// Keys are spread over prefixes p000/, p001/, …
    #[arg(long, value_name = "P", default_value_t = 8)]
    pub seed_prefixes: u32,
    /// Chance that an entry after a key's first is a delete marker.
    #[arg(long, value_name = "RATIO", default_value_t = 0.1)]
    pub seed_markers: f64,
    /// Timestamps spread over this many past days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub seed_days: u32,
    /// Timestamps end at this Unix time (seconds) instead of now, so that
    /// two servers seeded alike hold the very same entries.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub seed_until: Option<i64>,
    /// Key shape: flat, deep, unicode, control.
    #[arg(long, value_name = "SHAPE", default_value = "flat")]
    pub seed_shape: KeyShape,
    /// Minimum key length in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 40)]
    pub seed_key_len: usize,
    /// Size of each seeded object.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub seed_object_size: u64,
    /// Seed for the bucket's contents, version ids and fault dice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Chance of answering 503 SlowDown.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_slowdown: f64,
    /// Chance of answering 500 InternalError.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_500: f64,
    /// Chance, per key of a DeleteObjects request, of a SlowDown error for
    /// that key inside an HTTP 200 body.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_delete_slowdown: f64,
    /// Chance, per DeleteObjects request, of adding to its 200 answer an
    /// <Error> about a key that was not asked for (InternalError; the
    /// deletes asked for are made): an answer a client cannot match to
    /// the keys it sent.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_delete_unmatched: f64,
    /// Chance of resetting the connection halfway through a response.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_reset: f64,
    /// Chance of sending a response body slowly.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_slow_body: f64,
    /// Pause between the pieces of a slow body.
    #[arg(long, value_name = "MS", default_value_t = 200.0)]
    pub slow_body_ms: f64,
    /// Chance of answering a conditional write (PutObject, CopyObject,
    /// CompleteMultipartUpload, DeleteObject) 409
    /// ConditionalRequestConflict, nothing written, as AWS does when
    /// another write races it; the upload of a refused completion is gone.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_conflict: f64,
    /// Ignore If-Match / If-None-Match on writes and deletes (and the
    /// ETag of DeleteObjects entries), as some S3-compatible servers do
    /// (AWS honours them: 412, or 404 with no current object).
    #[arg(long)]
    pub ignore_conditions: bool,
    /// How long a RestoreObject of an archived version takes.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub restore_delay_ms: f64,
    /// Refuse reads and copies of versions encrypted with this KMS key id,
    /// as AWS does when the caller may not use the key (repeatable).
    #[arg(long, value_name = "KEY_ID")]
    pub deny_kms_key: Vec<String>,
    /// Answer ListObjectVersions the way this server lays it out: aws;
    /// minio (EncodingType after the entries, its own URL encoding); ceph
    /// (older RGW: NextKeyMarker raw while keys are URL-encoded).
    #[arg(long, value_name = "SERVER", value_enum, default_value = "aws")]
    pub list_dialect: crate::xml::Dialect,
    /// Chance of answering a CopyObject, UploadPartCopy or
    /// CompleteMultipartUpload 200 OK with an <Error> body (InternalError)
    /// and writing nothing, as S3 does for an error during the copy.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_copy_200_error: f64,
    /// Chance of giving a write that makes a new version (PutObject,
    /// CopyObject, CompleteMultipartUpload, DeleteObject without a version
    /// id) no answer, the connection dropped, and making it --late-commit-ms
    /// later, its conditions judged then: a client that gives up on S3
    /// does not know whether its write happened.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_late_commit: f64,
    /// How long after the dropped answer a --fault-late-commit write is
    /// made.
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    pub late_commit_ms: f64,
    /// Make every CopyObject and CompleteMultipartUpload take this long,
    /// answering 200 OK at once and sending whitespace until the result
    /// (or an <Error>), as S3 does for long copies and completions.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub copy_delay_ms: f64,
    /// Take at most N writes a second (PUT, COPY, DELETE, multipart
    /// completions; each key of a DeleteObjects one write) under each
    /// top-level prefix, as S3 scales per prefix: past it, 503 SlowDown
    /// (a per-key SlowDown inside a DeleteObjects 200). A second's worth may
    /// come as a burst.
    #[arg(long, value_name = "N")]
    pub prefix_write_rps: Option<f64>,

    /// Write the S3 Inventory report of the seeded bucket (every version,
    /// as AWS lays one out) under DIR, print its manifest's path, and exit
    /// instead of serving.
    #[arg(long, value_name = "DIR", requires = "seed_bucket")]
    pub write_inventory: Option<PathBuf>,
    /// The report's format: csv, orc or parquet.
    #[arg(long, value_name = "FORMAT", default_value = "parquet", value_parser = ["csv", "orc", "parquet"])]
    pub inventory_format: String,
    /// Data files in the report.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub inventory_files: usize,
}

impl Options {
    /// The simulated S3 these options describe, seeded.
    pub fn sim(&self) -> Result<Sim, StartError> {
        let principals = self.credentials.clone().unwrap_or_default();
        principals
            .check_against(&self.access_key)
            .map_err(StartError::Credentials)?;
        let sim = Sim::new(Config {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            latency: ms(self.latency_ms),
            jitter: ms(self.jitter_ms),
            faults: Faults {
                slow_down: self.fault_slowdown,
                internal_error: self.fault_500,
                delete_slow_down: self.fault_delete_slowdown,
                delete_unmatched: self.fault_delete_unmatched,
                reset: self.fault_reset,
                slow_body: self.fault_slow_body,
                slow_body_delay: ms(self.slow_body_ms),
                conflict: self.fault_conflict,
                copy_200_error: self.fault_copy_200_error,
                late_commit: self.fault_late_commit,
                late_commit_delay: ms(self.late_commit_ms),
            },
            seed: self.seed,
            ignore_conditions: self.ignore_conditions,
            restore_delay: ms(self.restore_delay_ms),
            denied_kms_keys: self.deny_kms_key.clone(),
            list_dialect: self.list_dialect,
            copy_delay: ms(self.copy_delay_ms),
            principals: principals.0,
            prefix_write_rps: self.prefix_write_rps.filter(|r| *r > 0.0),
        });
        if let Some(spec) = self.seed_spec() {
            crate::seed::seed(&sim.store, &spec).map_err(StartError::Seed)?;
        }
        Ok(sim)
    }

    /// The bucket to seed, if any.
    pub fn seed_spec(&self) -> Option<SeedSpec> {
        Some(SeedSpec {
            bucket: self.seed_bucket.clone()?,
            keys: self.seed_keys,
            versions: self.seed_versions,
            prefixes: self.seed_prefixes,
            marker_ratio: self.seed_markers,
            days: self.seed_days,
            until_ms: self.seed_until.map(|s| s * 1000),
            shape: self.seed_shape,
            key_len: self.seed_key_len,
            object_size: self.seed_object_size,
            seed: self.seed,
        })
    }

    /// Writes the seeded bucket's inventory report (`--write-inventory`);
    /// returns its manifest's path.
    pub fn write_inventory(&self, sim: &Sim, dir: &std::path::Path) -> std::io::Result<PathBuf> {
        let spec = self
            .seed_spec()
            .ok_or_else(|| std::io::Error::other("--write-inventory needs --seed-bucket"))?;
        let rows = crate::report::rows_of(&sim.store, &spec.bucket)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let format = match self.inventory_format.as_str() {
            "csv" => s3inventory::Format::Csv,
            "orc" => s3inventory::Format::Orc,
            _ => s3inventory::Format::Parquet,
        };
        let created = crate::store::now_ms();
        s3inventory::write_report(
            dir,
            &spec.bucket,
            format,
            &rows,
            self.inventory_files,
            created,
        )
        .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Starts the server on `listen`, on the current tokio runtime.
    pub async fn serve(&self) -> std::io::Result<crate::Server> {
        let sim = self.sim().map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(&self.listen).await?;
        crate::serve(sim, listener)
    }
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1000.0)
}

/// Why the options describe no server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot seed the bucket: {0:?}")]
    Seed(StoreError),
    /// The principals cannot be told apart.
    #[error("{0}")]
    Credentials(String),
}
