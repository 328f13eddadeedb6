//! `s3sim`: run the simulated S3 server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use s3sim::seed::{KeyShape, SeedSpec};
use s3sim::{Config, Faults, Sim};

/// An in-memory, versioned S3 server for tests and benchmarks: fast,
/// faithful to AWS's versioning semantics, and able to misbehave on purpose.
///
/// Requests must be SigV4-signed with the configured key pair; use
/// path-style addressing (http://ADDR/BUCKET/KEY). GET /_s3sim/stats shows
/// the request counters, which are also printed on exit.
#[derive(Debug, Parser)]
#[command(name = "s3sim", version, max_term_width = 100)]
#[command(
    after_help = "Example: a bucket of 1 M versions over 32 prefixes, 20 ms per request\n  \
    s3sim --listen 127.0.0.1:9000 --latency-ms 20 \\\n    \
    --seed-bucket big --seed-keys 500000 --seed-versions 2 --seed-prefixes 32"
)]
struct Args {
    /// Address to listen on (port 0: any free port; see --addr-file).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: String,
    /// Write the bound address (host:port) to this file once listening.
    #[arg(long, value_name = "FILE")]
    addr_file: Option<PathBuf>,
    #[arg(long, default_value = "s3sim")]
    access_key: String,
    #[arg(long, default_value = "s3sim-secret", hide_default_value = true)]
    secret_key: String,
    /// Latency added to every request.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    latency_ms: f64,
    /// Up to this much more latency, uniformly distributed.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    jitter_ms: f64,

    /// Create this versioned bucket, filled in memory, at start.
    #[arg(long, value_name = "NAME")]
    seed_bucket: Option<String>,
    /// Keys in the seeded bucket.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    seed_keys: u64,
    /// Entries (versions and delete markers) per key.
    #[arg(long, value_name = "M", default_value_t = 2)]
    seed_versions: u32,
    /// Keys are spread over prefixes p000/, p001/, …
    #[arg(long, value_name = "P", default_value_t = 8)]
    seed_prefixes: u32,
    /// Chance that an entry after a key's first is a delete marker.
    #[arg(long, value_name = "RATIO", default_value_t = 0.1)]
    seed_markers: f64,
    /// Timestamps spread over this many past days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    seed_days: u32,
    /// Key shape: flat, deep, unicode, control.
    #[arg(long, value_name = "SHAPE", default_value = "flat")]
    seed_shape: KeyShape,
    /// Minimum key length in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 40)]
    seed_key_len: usize,
    /// Size of each seeded object.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    seed_object_size: u64,
    /// Seed for the bucket's contents, version ids and fault dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Chance of answering 503 SlowDown.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_slowdown: f64,
    /// Chance of answering 500 InternalError.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_500: f64,
    /// Chance, per key of a DeleteObjects request, of a SlowDown error for
    /// that key inside an HTTP 200 body.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_delete_slowdown: f64,
    /// Chance of resetting the connection halfway through a response.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_reset: f64,
    /// Chance of sending a response body slowly.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_slow_body: f64,
    /// Pause between the pieces of a slow body.
    #[arg(long, value_name = "MS", default_value_t = 200.0)]
    slow_body_ms: f64,
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1000.0)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let sim = Sim::new(Config {
        access_key: a.access_key,
        secret_key: a.secret_key,
        latency: ms(a.latency_ms),
        jitter: ms(a.jitter_ms),
        faults: Faults {
            slow_down: a.fault_slowdown,
            internal_error: a.fault_500,
            delete_slow_down: a.fault_delete_slowdown,
            reset: a.fault_reset,
            slow_body: a.fault_slow_body,
            slow_body_delay: ms(a.slow_body_ms),
        },
        seed: a.seed,
    });
    if let Some(bucket) = a.seed_bucket {
        let started = Instant::now();
        let spec = SeedSpec {
            bucket: bucket.clone(),
            keys: a.seed_keys,
            versions: a.seed_versions,
            prefixes: a.seed_prefixes,
            marker_ratio: a.seed_markers,
            days: a.seed_days,
            shape: a.seed_shape,
            key_len: a.seed_key_len,
            object_size: a.seed_object_size,
            seed: a.seed,
        };
        let n = s3sim::seed::seed(&sim.store, &spec)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        eprintln!(
            "s3sim: seeded s3://{bucket}: {n} entries, {} keys over {} prefixes in {:.1} s",
            a.seed_keys,
            a.seed_prefixes,
            started.elapsed().as_secs_f64()
        );
    }
    let listener = tokio::net::TcpListener::bind(&a.listen).await?;
    let server = s3sim::serve(sim.clone(), listener)?;
    if let Some(path) = &a.addr_file {
        std::fs::write(path, server.addr.to_string())?;
    }
    eprintln!("s3sim: listening on http://{}", server.addr);
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    server.run_until(shutdown).await;
    eprint!("s3sim: requests served\n{}", sim.counters.report());
    Ok(())
}
