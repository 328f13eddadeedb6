//! A restore planned twice does nothing twice: a copy back onto a key whose
//! newest version already holds the content of the version to restore is
//! not planned; the key is kept as "already as at T", with how that was
//! known (`model::content`; docs/design.md, "Already as at T").

use catalog::plans::{AlreadyKey, NewAction};
use catalog::{Catalog, KeyHistory};
use model::content::{known_same, KnownBy};
use model::time::format_time;
use model::ActionKind;

use crate::PlanError;

/// The key as already done instead of `action`, if `action` is a copy back
/// onto a key whose newest entry is a version holding the copy's content.
/// `journal`: whether apply's journal has any copy to read; `to`: T.
pub fn holds<'h>(
    catalog: &Catalog,
    journal: bool,
    key: KeyHistory<'h>,
    action: &NewAction<'h>,
    to: i64,
) -> Result<Option<AlreadyKey<'h>>, PlanError> {
    let (ActionKind::CopyVersion, Some(wanted)) = (action.kind, action.version_id) else {
        return Ok(None);
    };
    let newest = &key.entries[0];
    let Some(source) = key.entries.iter().find(|e| e.version_id == wanted) else {
        return Ok(None);
    };
    // Content in an archive class cannot be read until restored: the key
    // is not as it was at T (a copy of V can be read at once).
    let archived = |c: &Option<String>| c.as_deref().is_some_and(model::bucket::is_archive_class);
    if newest.is_marker || archived(&newest.storage_class) {
        return Ok(None);
    }
    let copies = match journal {
        true => catalog
            .copies_made(&[key.key_id])?
            .remove(&key.key_id)
            .unwrap_or_default(),
        false => Vec::new(),
    };
    let known_by = known_same(
        &copies,
        (wanted, source.size, source.etag_md5),
        (&newest.version_id, newest.size, newest.etag_md5),
    );
    // The same bytes written again in another storage class are not V as
    // it was (what apply's copy keeps); an ETag says nothing of the class.
    let Some(known_by) = known_by
        .filter(|by| *by == KnownBy::Journal || newest.storage_class == source.storage_class)
    else {
        return Ok(None);
    };
    let how = match known_by {
        KnownBy::Journal => "apply's journal: a copy of it",
        KnownBy::Etag => "the same size and single-part ETag",
    };
    Ok(Some(AlreadyKey {
        key: key.key,
        key_id: key.key_id,
        version_id: wanted,
        newest_version_id: &newest.version_id,
        known_by,
        why: format!(
            "already as at {}: the newest version {} holds the content of the version of {} ({how})",
            format_time(to),
            newest.version_id,
            format_time(source.mtime)
        ),
    }))
}
