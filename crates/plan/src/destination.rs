//! Where `plan restore --into` may put its copies: a place apart from the
//! keys the plan reads and restores.

use catalog::Catalog;
use model::{Destination, Location};

use crate::PlanError;

/// Refuses a destination that overlaps the scanned location — the same
/// bucket, one prefix a prefix of the other — unless the catalog holds no
/// key under the destination prefix: then the plan reads no source there
/// and no scanned key is written (restoring into an empty `restored/`
/// folder of the scanned bucket is a common, legitimate use). A key made
/// there after the scan is still safe: `--into` copies carry
/// `If-None-Match: *`, so they never replace an existing key.
pub fn check_destination(
    catalog: &Catalog,
    scanned: &Location,
    into: &Destination,
) -> Result<(), PlanError> {
    if into.bucket != scanned.bucket {
        return Ok(());
    }
    let base = &scanned.base_prefix;
    if !(into.prefix.starts_with(base.as_str()) || base.starts_with(into.prefix.as_str())) {
        return Ok(());
    }
    match catalog.first_key_under(&into.prefix)? {
        None => Ok(()),
        Some(key) => Err(PlanError::IntoOverlaps {
            into: into.to_string(),
            scanned: scanned.to_string(),
            key,
        }),
    }
}
