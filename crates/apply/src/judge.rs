//! What a key's entries in S3 mean for one action: whether the key is as
//! the plan expects it (the guard of `--verify` and of endpoints that
//! ignore conditions), and — after a call whose answer was lost, or a run
//! killed with it in flight — whether the call happened.
//!
//! A version becomes an action's result only on proof: S3's answer names
//! it; or, looking afterwards, it is the one entry the key gained above
//! what the plan expects and it has the copied version's ETag, or its
//! full-object checksum and size, or the ETag of the multipart upload the
//! action recorded (which is no longer in progress, so nothing more of it
//! can land). A time after the claim never attributes on its own. Anything
//! else that cannot be decided is `uncertain`, with the version that may
//! be the action's, for a person to settle.

use catalog::{ActionRow, Expected, Outcome};
use model::{ActionKind, Attribution, Entry};
use s3io::{Landed, S3Error, Seen};

use crate::Context;

/// An entry as a person reads it in an outcome.
pub(crate) fn describe(e: Option<&Entry>) -> String {
    match e {
        None => "no entry".to_owned(),
        Some(e) if e.is_marker => format!("delete marker {}", e.version_id),
        Some(e) => format!(
            "version {} ({} bytes, ETag {})",
            e.version_id,
            e.size.unwrap_or(0),
            e.etag.as_deref().unwrap_or("?")
        ),
    }
}

/// What the catalog expected on top of the key, for an outcome's text.
fn expected_text(expected: &Expected) -> String {
    match (expected.ids.first(), expected.none_ok) {
        (Some(id), _) => id.clone(),
        (None, true) => "no entry".to_owned(),
        (None, false) => "?".to_owned(),
    }
}

/// A key that is not as the plan expects: the action is `drifted`.
pub(crate) fn drifted(newest: Option<&Entry>, expected: &Expected) -> Outcome {
    Outcome::Drifted {
        found: format!(
            "the key changed after the scan: its newest entry is now {}, where {} was expected",
            describe(newest),
            expected_text(expected)
        ),
    }
}

/// The guard: `None` (go ahead) when the key's newest entry is one the
/// plan expects — the one the catalog knows on top, or one the plan's own
/// removals and writes lead to — else `drifted`. A removed marker or
/// version is a change like a new write.
pub(crate) fn guard(newest: Option<&Entry>, expected: &Expected) -> Option<Outcome> {
    match expected.allows(newest.map(|e| e.version_id.as_str())) {
        true => None,
        false => Some(drifted(newest, expected)),
    }
}

/// The entries a key gained above what the plan expects, newest first;
/// `None` when what it expects is gone from the key (someone removed it).
fn gained<'e>(entries: &'e [Entry], expected: &Expected) -> Option<&'e [Entry]> {
    match entries
        .iter()
        .position(|e| expected.allows(Some(&e.version_id)))
    {
        Some(at) => Some(&entries[..at]),
        None if expected.none_ok => Some(entries),
        None => None,
    }
}

/// What a write's key shows after its call may have happened: `entries`
/// newest first; `upload_etag` the ETag of the multipart completion that
/// was sent (its upload no longer in progress).
pub(crate) async fn judge_write(
    cx: &Context<'_>,
    row: &ActionRow,
    expected: &Expected,
    entries: &[Entry],
    upload_etag: Option<&str>,
) -> Result<Seen, S3Error> {
    let Some(gained) = gained(entries, expected) else {
        return Ok(Seen::Changed(match drifted(entries.first(), expected) {
            Outcome::Drifted { found } => found,
            _ => unreachable!("drifted is drifted"),
        }));
    };
    // A write that landed is the first entry above what was expected (it
    // was sent on that condition); others may have written since.
    let Some(candidate) = gained.last() else {
        return Ok(Seen::NotWritten);
    };
    let changed = || {
        Seen::Changed(format!(
            "the key changed after the scan: {} was written on top of {}",
            describe(Some(candidate)),
            expected_text(expected)
        ))
    };
    let unknown = |why: String| Seen::Unknown {
        candidate: Some(candidate.version_id.clone()),
        why,
    };
    let landed = |matched_by| {
        Seen::Written(Landed {
            version_id: Some(candidate.version_id.clone()),
            etag: candidate.etag.clone(),
            matched_by,
        })
    };
    match row.kind {
        ActionKind::CopyVersion if candidate.is_marker => Ok(changed()),
        ActionKind::CopyVersion => {
            let upload = upload_etag.or(row.upload.as_ref().map(|u| u.1.as_str()));
            if let Some(upload) = upload.filter(|u| !u.is_empty()) {
                return Ok(match candidate.etag.as_deref() == Some(upload) {
                    true => landed(Attribution::Upload),
                    // The upload is over and no entry has its ETag.
                    false => changed(),
                });
            }
            let size_matches = candidate.size == row.size;
            if size_matches && candidate.etag.is_some() && candidate.etag == row.source_etag {
                return Ok(landed(Attribution::Etag));
            }
            if size_matches && gained.len() == 1 {
                if let Some(seen) = same_checksum(cx, row, candidate).await? {
                    return Ok(match seen {
                        true => landed(Attribution::Checksum),
                        false => changed(),
                    });
                }
            }
            Ok(unknown(format!(
                "the call's answer was lost, and {} was written above {} since: its content could not be matched to the copy (no equal ETag; no full-object checksum to compare, or more than one new entry)",
                describe(Some(candidate)),
                expected_text(expected)
            )))
        }
        ActionKind::AddDeleteMarker if candidate.is_marker => Ok(unknown(format!(
            "the call's answer was lost, and delete marker {} was added above {} since: S3 shows nothing that tells whether it is this action's or another writer's",
            candidate.version_id,
            expected_text(expected)
        ))),
        _ => Ok(changed()),
    }
}

/// Whether the candidate has the copied version's full-object checksum;
/// `None` when either has none (or cannot be read).
async fn same_checksum(
    cx: &Context<'_>,
    row: &ActionRow,
    candidate: &Entry,
) -> Result<Option<bool>, S3Error> {
    let (bucket, key) = cx.target.place(&row.key);
    let source = row.version_id.as_deref().unwrap_or("null");
    let state = |bucket: &str, key: &str, version: &str| {
        let (bucket, key, version) = (bucket.to_owned(), key.to_owned(), version.to_owned());
        async move { cx.s3.version_state(&bucket, &key, &version).await }
    };
    let read = |r: Result<model::bucket::VersionState, S3Error>| match r {
        Ok(s) => Ok(s.checksum),
        Err(e) if e.stops_the_run() => Err(e),
        Err(_) => Ok(None),
    };
    let made = read(state(bucket, &key, &candidate.version_id).await)?;
    let copied = read(state(&cx.target.bucket, &row.key, source).await)?;
    Ok(match (made, copied) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    })
}

/// What a judgement means for the action (`None`: send it).
pub(crate) fn outcome_of_seen(row: &ActionRow, seen: Seen) -> Option<Outcome> {
    match seen {
        Seen::Written(l) => Some(Outcome::Done {
            result_version_id: l.version_id,
            matched_by: Some(l.matched_by),
            etag: l.etag,
        }),
        Seen::Changed(found) => Some(Outcome::Drifted { found }),
        Seen::Unknown { candidate, why } => Some(Outcome::Uncertain { candidate, why }),
        // An uncertain action is examined again, never sent again.
        Seen::NotWritten => row.uncertain.clone().map(|candidate| Outcome::Uncertain {
            why: match &candidate {
                Some(c) => format!(
                    "still not known: the key shows nothing new above what was expected (the version that may be this action's, {c}, is no longer on it)"
                ),
                None => "still not known: nothing new is on the key, but the call may still land".into(),
            },
            candidate,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, marker: bool) -> Entry {
        Entry {
            key: "k".into(),
            version_id: id.into(),
            is_marker: marker,
            is_latest: false,
            mtime: 0,
            size: (!marker).then_some(3),
            etag: (!marker).then(|| format!("etag-{id}")),
            storage_class: None,
        }
    }

    fn expected(ids: &[&str], none_ok: bool) -> Expected {
        Expected {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            none_ok,
        }
    }

    #[test]
    fn the_guard_takes_only_what_the_catalog_and_the_plans_own_actions_lead_to() {
        // A marker on top, which the plan does not remove: only it.
        let e = expected(&["m"], false);
        assert_eq!(guard(Some(&entry("m", true)), &e), None);
        // Someone removed the marker: the version under it is a change.
        let out = guard(Some(&entry("v", false)), &e).unwrap();
        assert!(
            matches!(&out, Outcome::Drifted { found } if found.contains("version v") && found.contains("where m")),
            "{out:?}"
        );
        assert!(guard(None, &e).is_some());
        // The plan removes everything: no entry is fine.
        assert_eq!(guard(None, &expected(&["v"], true)), None);
    }

    #[test]
    fn what_a_key_gained_is_what_lies_above_the_expected_entry() {
        let now = [entry("x", false), entry("c", false), entry("v", false)];
        assert_eq!(gained(&now, &expected(&["v"], false)).unwrap().len(), 2);
        assert_eq!(gained(&now, &expected(&["x"], false)).unwrap().len(), 0);
        assert!(gained(&now, &expected(&["gone"], false)).is_none());
        assert_eq!(gained(&now, &expected(&[], true)).unwrap().len(), 3);
    }
}
