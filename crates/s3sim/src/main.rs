//! `s3sim`: run the simulated S3 server.

use std::time::Instant;

use clap::Parser;
use s3sim::Options;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let options = Options::parse();
    let started = Instant::now();
    let sim = match options.sim() {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("s3sim: {e}");
            std::process::exit(1);
        }
    };
    if let Some(spec) = options.seed_spec() {
        eprintln!(
            "s3sim: seeded s3://{}: {} keys over {} prefixes in {:.1} s",
            spec.bucket,
            spec.keys,
            spec.prefixes,
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &options.write_inventory {
        let started = Instant::now();
        let manifest = options.write_inventory(&sim, dir)?;
        eprintln!(
            "s3sim: wrote the inventory report in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        println!("{}", manifest.display());
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(&options.listen).await?;
    let server = s3sim::serve(sim.clone(), listener)?;
    if let Some(path) = &options.addr_file {
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
