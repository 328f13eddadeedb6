//! Logs for the operator chasing a problem: `-v`/`-vv` or `S3REWIND_LOG`
//! (an EnvFilter string), to standard error, between progress redraws.
//!
//! The AWS SDK's own events come along (retries, throttling, endpoint
//! resolution). Its signing crate is never heard: at trace level it logs
//! canonical requests, which carry the session token, and the strings a
//! signature is made from.

use std::io::Write;

use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::output;

/// The environment variable that chooses what is logged.
pub const ENV: &str = "S3REWIND_LOG";

/// Starts logging as `-v` were given `verbose` times, unless `S3REWIND_LOG`
/// says otherwise; an unreadable `S3REWIND_LOG` is an error.
pub fn init(verbose: u8) -> Result<(), String> {
    let filter = match std::env::var(ENV) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::builder()
            .parse(&spec)
            .map_err(|e| format!("{ENV}={spec:?} is not a log filter: {e}\n  hint: write e.g. {ENV}=debug or {ENV}=s3io=debug,aws_smithy_runtime=info"))?,
        _ => match verbose {
            0 => return Ok(()),
            1 => EnvFilter::new("info"),
            2 => EnvFilter::new("debug,hyper=info,hyper_util=info,h2=info,rustls=info"),
            _ => EnvFilter::new("trace"),
        },
    };
    let never_signing = FilterFn::new(|meta| !meta.target().starts_with("aws_sigv4"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(BetweenRedraws)
        .with_ansi(false)
        .with_target(true)
        .with_filter(never_signing)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

/// Standard error, written while the progress bar (if any) is cleared.
struct BetweenRedraws;

impl<'a> MakeWriter<'a> for BetweenRedraws {
    type Writer = LogLine;

    fn make_writer(&'a self) -> Self::Writer {
        LogLine(Vec::with_capacity(256))
    }
}

/// One event's text, written out whole when dropped.
struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        // Messages quote keys and servers' words: escaped like all such text.
        let text = String::from_utf8_lossy(&self.0);
        let line = format!("{}\n", output::shown_lines(text.trim_end_matches('\n')));
        output::between_redraws(|| {
            let _ = std::io::stderr().write_all(line.as_bytes());
        });
    }
}
