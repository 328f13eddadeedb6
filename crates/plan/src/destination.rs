//! Where `plan restore --into` may put its copies: a place apart from the
//! keys the plan reads and restores, where no two keys land on one.

use catalog::{Catalog, ScanRecord};
use model::Destination;

use crate::PlanError;

/// Refuses a destination that overlaps the scanned location — the same
/// bucket, one prefix a prefix of the other — unless the catalog holds no
/// key under the destination prefix: then the plan reads no source there
/// and no scanned key is written (restoring into an empty `restored/`
/// folder of the scanned bucket is a common, legitimate use). A key made
/// there after the scan is still safe: `--into` copies carry
/// `If-None-Match: *`, so they never replace a current object. A shard's
/// catalog cannot say that: the other shards' keys are not in it.
///
/// Refuses too a scanned base without a trailing `/` that holds keys going
/// on with `/` and keys going on without (`img/x.jpg`, `imgx.jpg`): both
/// would land on one destination key.
pub fn check_destination(
    catalog: &Catalog,
    scan: &ScanRecord,
    into: &Destination,
) -> Result<(), PlanError> {
    let scanned = &scan.location;
    let base = &scanned.base_prefix;
    if !base.is_empty() && !base.ends_with('/') {
        let folder = catalog.first_key_under(&format!("{base}/"))?;
        let other = catalog.first_key_continuing(base, '/')?;
        if let (Some(a), Some(b)) = (folder, other) {
            return Err(PlanError::IntoCollides {
                into: into.to_string(),
                a,
                b,
            });
        }
    }
    if into.bucket != scanned.bucket {
        return Ok(());
    }
    if !(into.prefix.starts_with(base.as_str()) || base.starts_with(into.prefix.as_str())) {
        return Ok(());
    }
    let held = match &scan.shard {
        Some(shard) => Some(format!(
            "(this catalog holds shard {shard} only: another shard's keys may be there)"
        )),
        None => catalog
            .first_key_under(&into.prefix)?
            .map(|key| format!("({key:?} is one)")),
    };
    match held {
        None => Ok(()),
        Some(why) => Err(PlanError::IntoOverlaps {
            into: into.to_string(),
            scanned: scanned.to_string(),
            why,
        }),
    }
}
