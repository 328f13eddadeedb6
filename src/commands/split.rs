//! `s3rewind split`: the keys that cut a location into parts for many machines.

use std::io::Write;

use s3io::S3;

use crate::cli::{GlobalArgs, SplitArgs};
use crate::output::{shown, thousands};
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: SplitArgs) -> Result<u8, CliError> {
    let (bucket, base) = super::scan::parse_s3_url(&args.url)?;
    let s3 = S3::connect(&super::client_options(global, s3io::Pace::default())).await;
    s3.bucket_versioning(&bucket).await?;
    let parts = args.parts as usize;
    let split = inventory::split(&s3, &bucket, &base, parts).await?;
    if split.cuts.len() + 1 < parts {
        return Err(CliError::Usage(format!(
            "found only {} keys to cut {} into {parts} parts (it holds too few keys, or none)\n  hint: ask for fewer --parts",
            split.cuts.len(),
            args.url
        )));
    }
    let text: String = split
        .cuts
        .iter()
        .map(|k| format!("{}\n", model::encode_key(k)))
        .collect();
    if let Some(path) = &args.out {
        std::fs::write(path, &text)
            .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    let location = format!("s3://{bucket}/{base}");
    if args.json.json {
        println!("{:#}", json(&location, &split));
        return Ok(exit::OK);
    }
    if global.verbose > 0 {
        print_parts(&location, &split);
    }
    match &args.out {
        Some(path) => eprintln!(
            "wrote the {} keys between {parts} parts to {}",
            split.cuts.len(),
            path.display()
        ),
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(exit::OK)
}

/// Part `i`'s bounds: the keys after `after`, up to `upto` included.
fn bounds(split: &inventory::Split, i: usize) -> (Option<&str>, Option<&str>) {
    let key = |j: Option<usize>| j.and_then(|j| split.cuts.get(j)).map(String::as_str);
    (key(i.checked_sub(1)), key(Some(i)))
}

fn share(split: &inventory::Split, keys: f64) -> f64 {
    match split.keys > 0.0 {
        true => keys / split.keys,
        false => 0.0,
    }
}

fn json(location: &str, split: &inventory::Split) -> serde_json::Value {
    let parts: Vec<serde_json::Value> = split
        .parts
        .iter()
        .enumerate()
        .map(|(i, &keys)| {
            let (after, upto) = bounds(split, i);
            serde_json::json!({
                "part": i,
                "after": after,
                "upto": upto,
                "share": share(split, keys),
                "keys": keys.round() as u64,
            })
        })
        .collect();
    serde_json::json!({
        "location": location,
        "bounds": split.cuts,
        "parts": parts,
        "keys": split.keys.round() as u64,
        "requests": split.requests,
    })
}

/// `-v`: each part's estimated share, on standard error (standard output
/// may be the bounds).
fn print_parts(location: &str, split: &inventory::Split) {
    eprintln!(
        "{} in {} parts, found with {} requests (one-entry listings); it holds about {} keys:",
        shown(location),
        split.parts.len(),
        thousands(split.requests),
        thousands(split.keys.round() as u64)
    );
    for (i, &keys) in split.parts.iter().enumerate() {
        let (after, upto) = bounds(split, i);
        let range = match (after, upto) {
            (None, Some(upto)) => format!("keys up to \"{}\"", shown(upto)),
            (Some(after), Some(upto)) => {
                format!("keys after \"{}\" up to \"{}\"", shown(after), shown(upto))
            }
            (Some(after), None) => format!("keys after \"{}\"", shown(after)),
            (None, None) => "every key".to_owned(),
        };
        eprintln!(
            "  part {i}: about {:.1} % (~{} keys), {range}",
            100.0 * share(split, keys),
            thousands(keys.round() as u64)
        );
    }
}
