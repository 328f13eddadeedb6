//! `s3rewind split`: the keys that cut a location into parts for many machines.

use std::io::Write;

use s3io::S3;

use crate::cli::{GlobalArgs, SplitArgs};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: SplitArgs) -> Result<u8, CliError> {
    let (bucket, base) = super::scan::parse_s3_url(&args.url)?;
    let s3 = S3::connect(&super::client_options(global, s3io::Pace::default())).await;
    s3.bucket_versioning(&bucket).await?;
    let parts = args.parts as usize;
    let keys = inventory::boundaries(&s3, &bucket, &base, parts).await?;
    if keys.len() + 1 < parts {
        return Err(CliError::Usage(format!(
            "found only {} keys to cut {} into {parts} parts (it holds too few keys, or none)\n  hint: ask for fewer --parts",
            keys.len(),
            args.url
        )));
    }
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", model::encode_key(k)))
        .collect();
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))?;
            eprintln!(
                "wrote the {} keys between {parts} parts to {}",
                keys.len(),
                path.display()
            );
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(exit::OK)
}
