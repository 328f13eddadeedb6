//! `scan --keys-of PLAN`: a plan's keys listed again (adjacent keys share
//! requests) and their entries replaced in the finished scan, a slice of
//! keys a transaction.

use model::Entry;
use s3io::S3;

use catalog::Catalog;

use crate::ScanError;

/// Keys read from the catalog, listed and replaced at a time.
const SLICE: usize = 10_000;

/// What listing a plan's keys again found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rescanned {
    pub keys: u64,
    pub versions: u64,
    pub delete_markers: u64,
}

/// Lists every key of plan `plan_id` again in `bucket` and replaces its
/// entries in the catalog; `seen` hears how many keys are done.
pub async fn rescan_keys(
    s3: &S3,
    catalog: &mut Catalog,
    plan_id: i64,
    bucket: &str,
    seen: impl Fn(u64),
) -> Result<Rescanned, ScanError> {
    let mut out = Rescanned::default();
    let revision = catalog.begin_change(catalog::ChangeKind::Rescan, Some(plan_id))?;
    let mut after = 0;
    loop {
        let planned = catalog.planned_keys(plan_id, after, SLICE)?;
        let Some(last) = planned.last() else {
            return Ok(out);
        };
        after = last.key_id;
        let mut keys: Vec<(i64, &str)> =
            planned.iter().map(|k| (k.key_id, k.key.as_str())).collect();
        keys.sort_by(|a, b| a.1.cmp(b.1));
        let listed = s3.entries_of(bucket, &keys).await?;
        let replaced: Vec<(i64, String, Vec<Entry>)> = keys
            .iter()
            .zip(listed)
            .map(|(k, entries)| (k.0, k.1.to_owned(), entries))
            .collect();
        for (_, _, entries) in &replaced {
            out.keys += 1;
            let markers = entries.iter().filter(|e| e.is_marker).count() as u64;
            out.delete_markers += markers;
            out.versions += entries.len() as u64 - markers;
        }
        catalog.replace_entries(revision, &replaced)?;
        seen(out.keys);
    }
}
